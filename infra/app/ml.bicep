// The Azure ML workspace (its Key Vault, storage account and container registry; the shared Application Insights),
// the compute cluster for AutoML trials and batch scoring, and the identity-based datastores on the data account.
param location string
param tags object
param workspaceName string
param keyVaultName string
param storageAccountName string
param registryName string
param applicationInsightsId string
param dataStorageAccountName string
param computeName string
param computeVmSize string
param computeMaxNodes int

module workspaceStorage 'storage.bicep' = {
  name: 'ml-storage'
  params: {
    location: location
    tags: tags
    name: storageAccountName
    containers: []
  }
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_189:the workspace reaches its vault publicly without a VNet; RBAC only, no access policies
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' } // checkov:skip=CKV_AZURE_109:no VNet in this template (see CKV_AZURE_189)
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: registryName
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_163:image scanning is Defender for Containers, a subscription-level choice; the images are Azure ML's curated bases plus pip packages
  // checkov:skip=CKV_AZURE_166:quarantine needs Premium; Azure ML pushes and pulls its own environment images only
  sku: { name: 'Basic' }
  properties: {
    adminUserEnabled: false
    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_139:Azure ML builds and pulls environment images without a VNet; Entra ID only (no admin user)
  }
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' = {
  name: workspaceName
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  sku: { name: 'Basic', tier: 'Basic' }
  properties: {
    friendlyName: 'bankops'
    keyVault: keyVault.id
    storageAccount: workspaceStorage.outputs.id
    containerRegistry: registry.id
    applicationInsights: applicationInsightsId
    systemDatastoresAuthMode: 'identity' // the workspace's own storage allows no shared keys either
    // checkov:skip=CKV_AZURE_243:no private endpoint without a VNet (the function app on Flex Consumption has none here); Entra ID only
    publicNetworkAccess: 'Enabled' // checkov:skip=CKV_AZURE_144:the function app (Flex Consumption without a VNet) calls the workspace publicly, with Entra ID
  }
}

resource compute 'Microsoft.MachineLearningServices/workspaces/computes@2024-10-01' = {
  parent: workspace
  name: computeName
  location: location
  identity: { type: 'SystemAssigned' } // reads the datastores' blobs (Storage Blob Data Reader on the data account)
  properties: {
    computeType: 'AmlCompute'
    disableLocalAuth: true
    properties: {
      vmSize: computeVmSize
      vmPriority: 'Dedicated'
      remoteLoginPortPublicAccess: 'Disabled'
      scaleSettings: {
        minNodeCount: 0
        maxNodeCount: computeMaxNodes
        nodeIdleTimeBeforeScaleDown: 'PT120S'
      }
    }
  }
}

// Identity-based: no account key or SAS in the datastore; jobs use the compute's identity, the studio the workspace's.
resource datasets 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'bankops'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: dataStorageAccountName
    containerName: 'datasets'
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: { credentialsType: 'None' }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
    description: 'bankops dataset versions (MLTable + train.csv), written by the function app'
  }
}

resource predictions 'Microsoft.MachineLearningServices/workspaces/datastores@2024-10-01' = {
  parent: workspace
  name: 'bankops_predictions'
  properties: {
    datastoreType: 'AzureBlob'
    accountName: dataStorageAccountName
    containerName: 'predictions'
    endpoint: environment().suffixes.storage
    protocol: 'https'
    credentials: { credentialsType: 'None' }
    serviceDataAccessAuthIdentity: 'WorkspaceSystemAssignedIdentity'
    description: 'bankops batch scoring output'
  }
}

output workspaceName string = workspace.name
output workspaceId string = workspace.id
output workspacePrincipalId string = workspace.identity.principalId
output computeName string = compute.name
output computePrincipalId string = compute.identity.principalId
output datastoreName string = datasets.name
output predictionsDatastoreName string = predictions.name
