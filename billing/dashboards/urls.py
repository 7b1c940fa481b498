"""The dashboard's route, behind the admin's login (include it at ``admin/billing/spend/``).

``admin_view`` sends anonymous and non-staff users to the admin's login page, as every admin page
does; the view itself then lets in finance and team admins only.
"""

from django.contrib import admin
from django.urls import path

from billing.dashboards.views import SpendDashboardView

app_name = "spend_dashboard"

urlpatterns = [
    path("", admin.site.admin_view(SpendDashboardView.as_view()), name="index"),
]
