from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.app_shell, name="app"),
    path("login/", views.AppLoginView.as_view(), name="app-login"),
    path("logout/", views.AppLogoutView.as_view(), name="app-logout"),
    path("setup/", views.app_setup, name="app-setup"),
    path("invite/<str:token>/", views.app_invite, name="app-invite"),
]
