"""The browser app's pages: a session sign-in form, the first-run page of a fresh install, the
invitation accept page, and the shell that loads the ES modules.

Everything else the app does goes through the public REST API (session authentication, CSRF header),
so the app is also the reference client for other frontends. The three forms sign people in, which
the session API cannot do for a browser without a password form of its own; they call the same
services as the API (`invitation_accept`, `first_owner_create`)."""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie

from labelhub.accounts import services as accounts
from labelhub.accounts.preferences import preferences_get
from labelhub.core.errors import DomainError

from .modules import import_map, module_graph

USERNAME = re.compile(r"^[\w.@+-]{1,150}$")


def _no_user_yet() -> bool:
    return not get_user_model().objects.exists()


class AppLoginView(auth_views.LoginView):
    template_name = "app/login.html"
    redirect_authenticated_user = True
    next_page = "/app/"

    def get(self, request, *args, **kwargs):
        if _no_user_yet():  # a fresh install: its first owner is made on the first-run page
            return redirect("app-setup")
        return super().get(request, *args, **kwargs)


def _form_error(exc: DomainError) -> dict:
    return {"message": exc.message, "field": exc.field or ""}


def _username_checked(username: str) -> str:
    if not USERNAME.match(username):
        raise DomainError("A user name is letters, digits and @ . + - _ (at most 150).", field="username")
    return username


def app_setup(request):
    """The first-run page: only while no account exists, it makes the first owner (with their
    organization; also the server's administrator) and signs them in."""
    if not _no_user_yet():
        return redirect("app-login")
    values = {"username": "", "email": "", "organization": ""}
    error = None
    if request.method == "POST":
        values = {k: request.POST.get(k, "").strip() for k in values}
        try:
            user = accounts.first_owner_create(
                username=_username_checked(values["username"]),
                password=request.POST.get("password", ""),
                email=values["email"],
                organization_name=values["organization"],
            )
        except DomainError as exc:
            error = _form_error(exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/app/#/projects")
    return render(request, "app/setup.html", {"values": values, "error": error}, status=400 if error else 200)


def app_invite(request, token: str):
    """The accept page of an invitation link: a signed-in invitee accepts with one click; anyone else
    creates their account (user name and password) and is signed in. Then the app opens."""
    error = None
    username = ""
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        try:
            if request.user.is_authenticated:
                accounts.invitation_accept(token=token, user=request.user)
                return redirect("/app/")
            accounts.invitation_accept(
                token=token, username=_username_checked(username), password=request.POST.get("password", "")
            )
        except DomainError as exc:
            error = _form_error(exc)
        else:
            user = get_user_model().objects.get(username=username)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("/app/")
    invitation = accounts.invitation_preview(token=token)
    context = {
        "invitation": invitation,
        "error": error,
        "username": username or (invitation or {}).get("username", ""),
    }
    return render(request, "app/invite.html", context, status=400 if error else 200 if invitation else 404)


class AppLogoutView(auth_views.LogoutView):
    next_page = "/app/login/"


@ensure_csrf_cookie
@login_required(login_url="/app/login/")
def app_shell(request):
    """The single page; the client routes by URL hash (#/queue, #/task/12, #/manage/3). Cross-origin
    isolated (settings.LABELHUB_APP_COEP) so that the browser's SAM decoder can run threads."""
    graph = module_graph()
    response = render(
        request,
        "app/index.html",
        {
            # Inside <script>: "<" escaped as JSON allows, so no URL can close the element.
            "import_map": mark_safe(json.dumps(import_map()).replace("<", "\\u003c")),  # noqa: S308
            "preloads": graph.preloads,
            # What the app would otherwise ask for before its first screen: the user's preferences, and
            # the module graph of each screen it loads on demand.
            "boot": {"preferences": preferences_get(user=request.user), "screens": graph.preloads["screens"]},
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
