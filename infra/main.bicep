// bankops on Azure: `azd up` provisions everything below and deploys function_app.py (see README, "Run it on Azure").
// Plain resources, no registry modules, so the templates are checked offline (tests/infra). No secret in any template.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; a short hash of it names every resource.')
param environmentName string

@minLength(1)
@description('Region of every resource; Flex Consumption must be available there.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the user running azd (AZURE_PRINCIPAL_ID): the same data roles as the app, for the CLI. Empty: none.')
param principalId string = ''

@description('Compute cluster VM size (AutoML trials and batch scoring).')
param computeVmSize string = 'Standard_DS3_v2'

@minValue(1)
@description('Compute cluster max nodes; AutoML runs that many trials at once (AZUREML_MAX_NODES).')
param computeMaxNodes int = 4

@description('Retrain timer, NCRONTAB in UTC (RETRAIN_SCHEDULE).')
param retrainSchedule string = '0 0 2 * * *'

@description('Holdout metric ranges the gate and metric_out_of_range use (BANKOPS_METRIC_RANGES).')
param metricRanges string = 'AUC_weighted>=0.93,recall_yes>=0.45,log_loss<=0.30'

@secure()
@description('Incoming webhook (Teams or Slack) for alerts: the app setting BANKOPS_ALERT_WEBHOOK_URL and the action group. Empty: no webhook.')
param alertWebhookUrl string

@description('Create the Event Grid subscriptions (they need the deployed functions: the postdeploy hook sets this and provisions again).')
param eventSubscriptions bool = false

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
  }
}

module data 'app/storage.bicep' = {
  name: 'data-storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.storageStorageAccounts}data${resourceToken}'
    containers: ['incoming', 'quarantine', 'processed', 'batch', 'predictions', 'datasets', 'eventgrid-deadletter']
  }
}

var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainer = 'app-package-${take(functionAppName, 32)}'

module hostStorage 'app/storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: '${abbrs.storageStorageAccounts}func${resourceToken}'
    containers: [deploymentContainer]
  }
}

module ml 'app/ml.bicep' = {
  name: 'ml'
  scope: rg
  params: {
    location: location
    tags: tags
    workspaceName: '${abbrs.machineLearningServicesWorkspaces}${resourceToken}'
    keyVaultName: '${abbrs.keyVaultVaults}${resourceToken}'
    storageAccountName: '${abbrs.storageStorageAccounts}ml${resourceToken}'
    registryName: '${abbrs.containerRegistryRegistries}${resourceToken}'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    dataStorageAccountName: data.outputs.name
    computeName: 'cpu-cluster'
    computeVmSize: computeVmSize
    computeMaxNodes: computeMaxNodes
  }
}

module app 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    location: location
    tags: tags
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainer: deploymentContainer
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    dataBlobEndpoint: data.outputs.blobEndpoint
    workspaceName: ml.outputs.workspaceName
    computeName: ml.outputs.computeName
    computeMaxNodes: computeMaxNodes
    datastoreName: ml.outputs.datastoreName
    predictionsDatastoreName: ml.outputs.predictionsDatastoreName
    retrainSchedule: retrainSchedule
    metricRanges: metricRanges
    alertWebhookUrl: alertWebhookUrl
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    functionPrincipalId: app.outputs.principalId
    computePrincipalId: ml.outputs.computePrincipalId
    userPrincipalId: principalId
    dataStorageAccountName: data.outputs.name
    hostStorageAccountName: hostStorage.outputs.name
    workspaceName: ml.outputs.workspaceName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module events 'app/events.bicep' = if (eventSubscriptions) {
  name: 'events'
  scope: rg
  dependsOn: [rbac]
  params: {
    location: location
    tags: tags
    functionAppName: app.outputs.name
    dataStorageAccountName: data.outputs.name
    workspaceName: ml.outputs.workspaceName
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertWebhookUrl: alertWebhookUrl
  }
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output AZUREML_WORKSPACE_NAME string = ml.outputs.workspaceName
output AZURE_FUNCTION_NAME string = app.outputs.name
output SERVICE_API_NAME string = app.outputs.name
output BANKOPS_FUNCTION_URL string = 'https://${app.outputs.defaultHostName}/api'
output BANKOPS_STORAGE_ACCOUNT_URL string = data.outputs.blobEndpoint
output AZUREML_STUDIO_URL string = 'https://ml.azure.com/?wsid=${ml.outputs.workspaceId}'
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
