"""Routes of the spend APIs, at LiteLLM's paths (and our /key/usage): include at the root."""

from django.urls import path

from billing.apis import activity, self_service, spend

urlpatterns = [
    path("spend/logs", spend.SpendLogsView.as_view(), name="spend-logs"),
    path("global/spend/report", spend.GlobalSpendReportView.as_view(), name="global-spend-report"),
    path("user/daily/activity", activity.UserDailyActivityView.as_view(), name="user-daily-activity"),
    path("team/daily/activity", activity.TeamDailyActivityView.as_view(), name="team-daily-activity"),
    path("key/usage", self_service.KeyUsageView.as_view(), name="key-usage"),
]
