// The function app on Flex Consumption (Linux, Python 3.11, system-assigned identity), identity-based AzureWebJobsStorage,
// and every app setting the code reads on Azure (tests/infra/test_templates.py holds this list against shared/config.py).
param location string
param tags object
param name string
param planName string
param hostStorageAccountName string
param deploymentContainer string
param applicationInsightsName string
param dataBlobEndpoint string
param workspaceName string
param computeName string
param computeMaxNodes int
param datastoreName string
param predictionsDatastoreName string
param retrainSchedule string
param metricRanges string
@secure()
param alertWebhookUrl string
param instanceMemoryMB int = 2048
param maximumInstanceCount int = 40

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  // checkov:skip=CKV_AZURE_225:zone redundancy is per region on Flex Consumption; turn it on where offered
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

var settings = {
  // storage of the Functions host, the work queue (bankops-work) and the ledger/job tables: managed identity
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__blobServiceUri: hostStorage.properties.primaryEndpoints.blob
  AzureWebJobsStorage__queueServiceUri: hostStorage.properties.primaryEndpoints.queue
  AzureWebJobsStorage__tableServiceUri: hostStorage.properties.primaryEndpoints.table
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'
  BANKOPS_BACKEND: 'azure'
  BANKOPS_HOME: '/tmp/bankops' // nothing on Azure needs a persistent local disk
  BANKOPS_DATASTORE: 'azure'
  BANKOPS_STORAGE_ACCOUNT_URL: dataBlobEndpoint
  BANKOPS_WORK_QUEUE: 'bankops-work'
  BANKOPS_MAX_DATA_MB: '64' // a dropped file over this is quarantined unread (the function app's memory bound)
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_RESOURCE_GROUP: resourceGroup().name
  AZUREML_WORKSPACE_NAME: workspaceName
  AZUREML_COMPUTE: computeName
  AZUREML_MAX_NODES: string(computeMaxNodes)
  AZUREML_DATASTORE: datastoreName
  AZUREML_AUTOML_TIMEOUT_MINUTES: '30'
  AZUREML_ONNX_COMPATIBLE: 'false'
  AZUREML_ENDPOINT_NAME: 'bankops-scoring'
  AZUREML_INSTANCE_TYPE: 'Standard_DS2_V2'
  AZUREML_INSTANCE_COUNT: '1'
  AZUREML_BATCH_MODE: 'endpoint'
  AZUREML_BATCH_ENDPOINT_NAME: 'bankops-batch'
  AZUREML_BATCH_COMPUTE: computeName
  AZUREML_BATCH_INSTANCE_COUNT: '1'
  AZUREML_BATCH_MINI_BATCH_SIZE: '1'
  AZUREML_BATCH_MAX_RETRIES: '2'
  AZUREML_BATCH_TIMEOUT_SECONDS: '3600'
  AZUREML_PREDICTIONS_DATASTORE: predictionsDatastoreName
  BANKOPS_DEPLOY_GRACE_MINUTES: '60'
  RETRAIN_SCHEDULE: retrainSchedule
  BANKOPS_DATASET_NAME: 'bankmarketing'
  BANKOPS_MODEL_NAME: 'bankmarketing-classifier'
  BANKOPS_EXPERIMENT_NAME: 'bankmarketing'
  BANKOPS_AUTOML_BUDGET: '60'
  BANKOPS_PRIMARY_METRIC: 'AUC_weighted'
  BANKOPS_HOLDOUT_FRACTION: '0.1'
  BANKOPS_CV_FOLDS: '5'
  BANKOPS_SEED: '42'
  BANKOPS_MIN_ROWS: '100'
  BANKOPS_MIN_ROWS_PER_CLASS: '10'
  BANKOPS_EXCLUDE_COLUMNS: ''
  BANKOPS_DATA_ARRIVAL_MODE: 'append'
  BANKOPS_GATE_TOLERANCE: '0.002'
  BANKOPS_GATE_MIN_RECALL_YES: '0'
  BANKOPS_METRIC_RANGES: metricRanges
  BANKOPS_ALERT_RULES: 'failure_rate,p95_latency,availability,drift'
  BANKOPS_ALERT_INTERVAL_SECONDS: '60'
  BANKOPS_ALERT_WINDOW: '15m'
  BANKOPS_ALERT_MIN_REQUESTS: '20'
  BANKOPS_ALERT_FAILURE_RATE: '0.05'
  BANKOPS_ALERT_P95_MS: '500'
  BANKOPS_ALERT_AVAILABILITY: '0.99'
  BANKOPS_ALERT_MIN_PROBES: '3'
  BANKOPS_ALERT_DRIFT_MIN_RECORDS: '200'
  BANKOPS_ALERT_STUCK_FACTOR: '3'
  BANKOPS_ALERT_STALE_FACTOR: '2'
  BANKOPS_ALERT_WEBHOOK_URL: alertWebhookUrl
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  // checkov:skip=CKV_AZURE_222:Event Grid and the HTTP routes (function keys) reach the app publicly; no VNet here
  // checkov:skip=CKV_AZURE_17:callers authenticate with function keys (HTTP) and Event Grid's system key, not client certificates
  // checkov:skip=CKV_AZURE_212:Flex Consumption scales to zero by design; a retrain is not latency-critical
  // checkov:skip=CKV_AZURE_213:Flex Consumption has no App Service health check; /api/status is the app's own
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(settings): { name: setting.key, value: setting.value }]
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output principalId string = functionApp.identity.principalId
output defaultHostName string = functionApp.properties.defaultHostName
