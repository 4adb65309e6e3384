// A StorageV2 account reached with Entra ID only (no shared keys), and its blob containers.
param location string
param tags object
param name string
param containers array

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' } // checkov:skip=CKV_AZURE_206:LRS is enough for a reference deployment; raise to ZRS/GRS per environment
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity-based only: AzureWebJobsStorage__*ServiceUri, datastores without credentials
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_59:Flex Consumption without a VNet and Event Grid reach the account publicly; Entra ID only, no shared keys
    networkAcls: {
      defaultAction: 'Allow' // checkov:skip=CKV_AZURE_35:no VNet in this template (see CKV_AZURE_59); access needs an Entra ID role
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource blobContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for container in containers: {
  parent: blobService
  name: container
  properties: { publicAccess: 'None' }
}]

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output queueEndpoint string = account.properties.primaryEndpoints.queue
output tableEndpoint string = account.properties.primaryEndpoints.table
