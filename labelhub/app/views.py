"""The browser app's two pages: a session sign-in form and the shell that loads the ES modules.

Everything else the app does goes through the public REST API (session authentication, CSRF header),
so the app is also the reference client for other frontends."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


class AppLoginView(auth_views.LoginView):
    template_name = "app/login.html"
    redirect_authenticated_user = True
    next_page = "/app/"


class AppLogoutView(auth_views.LogoutView):
    next_page = "/app/login/"


@ensure_csrf_cookie
@login_required(login_url="/app/login/")
def app_shell(request):
    """The single page; the client routes by URL hash (#/queue, #/task/12, #/manage/3). Cross-origin
    isolated (settings.LABELHUB_APP_COEP) so that the browser's SAM decoder can run threads."""
    response = render(
        request,
        "app/index.html",
        {
            "username": request.user.username,
            "user_id": request.user.pk,
            "decode_threads": settings.LABELHUB_BROWSER_DECODE_THREADS,
            # No SAM model: the app segments every click on the server and never loads the browser decoder.
            "sam_model": int(bool(settings.LABELHUB_SAM_CHECKPOINT or settings.LABELHUB_SAM_RANDOM_SEED)),
        },
    )
    if settings.LABELHUB_APP_COEP:
        response["Cross-Origin-Embedder-Policy"] = settings.LABELHUB_APP_COEP
        response["Cross-Origin-Opener-Policy"] = "same-origin"
    return response
