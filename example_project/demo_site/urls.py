"""The admin is all the example project serves: smolqwery's export overview lives there."""

from django.contrib import admin
from django.urls import path

urlpatterns = [path("admin/", admin.site.urls)]
