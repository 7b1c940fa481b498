"""Health endpoints for load balancers and orchestrators."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe


# Probes send no cookies: exempt from CSRF so a wrong method gets a 405, not a 403.
@csrf_exempt
@require_safe
async def liveliness(request: HttpRequest) -> JsonResponse:
    """Answer that the process is up and serving requests."""
    return JsonResponse({"status": "healthy"})
