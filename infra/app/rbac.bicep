// Every role assignment of the README's table ("Role assignments"); tests/infra holds the two against each other.
param functionPrincipalId string
param computePrincipalId string
@description('The user running azd: the same data and workspace roles, for the bankops CLI. Empty: none.')
param userPrincipalId string = ''
param dataStorageAccountName string
param hostStorageAccountName string
param workspaceName string
param applicationInsightsName string

// Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles)
var roles = {
  'AzureML Data Scientist': 'f6c7c914-8db3-469d-8ca1-694a8f32e121'
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  'Storage Blob Data Reader': '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// function app: submit jobs, register data assets and models, create endpoints and deployments, read keys, logs, runs
resource functionOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, functionPrincipalId, roles['AzureML Data Scientist'])
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['AzureML Data Scientist'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// function app: read incoming/ and batch/, move files, write dataset versions and quarantine reasons
resource functionOnData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, functionPrincipalId, roles['Storage Blob Data Contributor'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// function app: AzureWebJobsStorage (host locks, timers, the deployment package), identity-based
resource functionOnHostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionPrincipalId, roles['Storage Blob Data Owner'])
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Owner'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// function app: the work queue bankops-work and its poison queue
resource functionOnHostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionPrincipalId, roles['Storage Queue Data Contributor'])
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Queue Data Contributor'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// function app: the event ledger (bankopsevents) and job records (bankopsjobs)
resource functionOnHostTables 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, functionPrincipalId, roles['Storage Table Data Contributor'])
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Table Data Contributor'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// function app: send telemetry to Application Insights with Entra ID (local auth is off)
resource functionOnInsights 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, functionPrincipalId, roles['Monitoring Metrics Publisher'])
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Monitoring Metrics Publisher'])
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// compute cluster: AutoML reads datasets/ through the identity-based datastore; batch jobs write predictions/
resource computeOnData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, computePrincipalId, roles['Storage Blob Data Contributor'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: computePrincipalId
    principalType: 'ServicePrincipal'
  }
}

// workspace: the studio previews the datastores' files with the workspace identity
resource workspaceOnData 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, workspace.id, roles['Storage Blob Data Reader'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Reader'])
    principalId: workspace.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// the user running azd: the bankops CLI (publish-pipeline, keys, logs) and dropping files into incoming/
resource userOnWorkspace 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(workspace.id, userPrincipalId, roles['AzureML Data Scientist'])
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['AzureML Data Scientist'])
    principalId: userPrincipalId
    principalType: 'User'
  }
}

resource userOnData 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(dataStorage.id, userPrincipalId, roles['Storage Blob Data Contributor'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: userPrincipalId
    principalType: 'User'
  }
}
