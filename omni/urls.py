from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from omni.api import api

admin.site.site_header = "omni back office"
admin.site.site_title = "omni"
admin.site.index_title = "Catalog, channels and sync logs"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
