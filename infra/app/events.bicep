// Event Grid system topics on the data account and the workspace, and the four subscriptions of CONTRACTS decision 2
// (README "Event Grid subscriptions"), each dead-lettering to eventgrid-deadletter/ with the topic's identity.
// Deployed once the functions exist (Event Grid checks an AzureFunction endpoint): azure.yaml's postdeploy hook.
param location string
param tags object
param functionAppName string
param dataStorageAccountName string
param workspaceName string

var deadLetterContainer = 'eventgrid-deadletter'
var blobApis = ['PutBlob', 'PutBlockList', 'CopyBlob', 'FlushWithClose']
var roles = {
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-10-01' existing = {
  name: workspaceName
}

resource storageTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${dataStorageAccountName}-events'
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: dataStorage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource workspaceTopic 'Microsoft.EventGrid/systemTopics@2024-06-01-preview' = {
  name: '${workspaceName}-events'
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

// Event Grid system topics: write undeliverable events to eventgrid-deadletter/
resource storageTopicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, storageTopic.id, roles['Storage Blob Data Contributor'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: storageTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource workspaceTopicDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, workspaceTopic.id, roles['Storage Blob Data Contributor'])
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles['Storage Blob Data Contributor'])
    principalId: workspaceTopic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

var deadLetter = {
  identity: { type: 'SystemAssigned' }
  deadLetterDestination: {
    endpointType: 'StorageBlob'
    properties: { resourceId: dataStorage.id, blobContainerName: deadLetterContainer }
  }
}

var blobSubscriptions = [
  { name: 'bankops-data-arrived', container: 'incoming' }
  { name: 'bankops-batch-arrived', container: 'batch' }
]

resource blobCreated 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = [for sub in blobSubscriptions: {
  parent: storageTopic
  name: sub.name
  dependsOn: [storageTopicDeadLetter]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${functionApp.id}/functions/on_data_arrived', maxEventsPerBatch: 1 }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${sub.container}/'
      advancedFilters: [{ operatorType: 'StringIn', key: 'data.api', values: blobApis }]
    }
    deadLetterWithResourceIdentity: deadLetter
  }
}]

resource runCompleted 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: workspaceTopic
  name: 'bankops-run-completed'
  dependsOn: [workspaceTopicDeadLetter]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${functionApp.id}/functions/on_run_completed', maxEventsPerBatch: 1 }
    }
    filter: {
      includedEventTypes: ['Microsoft.MachineLearningServices.RunCompleted']
      advancedFilters: [{ operatorType: 'StringIn', key: 'data.runType', values: ['azureml.PipelineRun'] }]
    }
    deadLetterWithResourceIdentity: deadLetter
  }
}

resource runFailed 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2024-06-01-preview' = {
  parent: workspaceTopic
  name: 'bankops-run-failed'
  dependsOn: [workspaceTopicDeadLetter]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: { resourceId: '${functionApp.id}/functions/on_run_completed', maxEventsPerBatch: 1 }
    }
    filter: {
      includedEventTypes: ['Microsoft.MachineLearningServices.RunStatusChanged']
      advancedFilters: [
        { operatorType: 'StringIn', key: 'data.runType', values: ['azureml.PipelineRun'] }
        { operatorType: 'StringIn', key: 'data.runStatus', values: ['Failed', 'Canceled'] }
      ]
    }
    deadLetterWithResourceIdentity: deadLetter
  }
}
