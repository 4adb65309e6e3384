// Azure Monitor alerts over what the function app logs to Application Insights (CONTRACTS decision 4: logger
// bankops.alerts writes "alert firing: <rule>" with customDimensions alert_rule/alert_state/alert_value/alert_threshold),
// one scheduled-query rule per bankops rule, all notifying one action group (the webhook, when given).
param location string
param tags object
param applicationInsightsId string
param actionGroupName string
@secure()
@description('Teams or Slack incoming webhook; empty: the action group has no receiver (add e-mail or others in the portal).')
param alertWebhookUrl string
param rules array = [
  'failure_rate', 'latency_p95', 'availability', 'prediction_drift'
  'retrain_failed', 'retrain_stuck', 'model_stale', 'data_stale', 'metric_out_of_range'
]
@description('How often each rule runs its query; the window is twice as long, so no firing line falls between two runs.')
param evaluationFrequency string = 'PT5M'
param windowSize string = 'PT10M'

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'bankops'
    enabled: true
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      { name: 'bankops-webhook', serviceUri: alertWebhookUrl, useCommonAlertSchema: true }
    ]
  }
}

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in rules: {
  name: 'bankops-${replace(rule, '_', '-')}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'bankops ${rule}'
    description: 'bankops rule ${rule} fired (the function app logged "alert firing: ${rule}"); see /api/status and the dashboard'
    severity: 2
    enabled: true
    scopes: [applicationInsightsId]
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'traces | where message startswith "alert firing:" | where tostring(customDimensions.alert_rule) == "${rule}" | extend alert_value = tostring(customDimensions.alert_value), alert_threshold = tostring(customDimensions.alert_threshold)'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'alert_value', operator: 'Include', values: ['*'] }
            { name: 'alert_threshold', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}]

output actionGroupId string = actionGroup.id
