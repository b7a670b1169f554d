"""Organizations and their members."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, update_session_auth_hash
from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.core.errors import DomainError, Forbidden, NotFound

from . import auth, services
from .authentication import TokenAuthentication
from .models import MANAGING_ROLES, Invitation, Membership, Organization, Role
from .selectors import (
    ALL_ROLES,
    INVITATION_STATUSES,
    invitations_by_status,
    organization_get,
    organizations_for,
)


class OrganizationOut(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["id", "name", "slug", "created_at", "role"]

    def get_role(self, obj: Organization) -> str | None:
        return getattr(obj, "my_role", None)


class OrganizationIn(serializers.Serializer):
    name = serializers.CharField(max_length=200)


class OrganizationViewSet(viewsets.ModelViewSet):
    queryset = Organization.objects.none()
    serializer_class = OrganizationOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete"]

    def get_queryset(self):
        from django.db.models import OuterRef, Subquery

        role = Membership.objects.filter(organization=OuterRef("pk"), user=self.request.user).values("role")[
            :1
        ]
        return organizations_for(user=self.request.user).annotate(my_role=Subquery(role))

    @extend_schema(request=OrganizationIn, responses={201: OrganizationOut})
    def create(self, request, *args, **kwargs):
        data = OrganizationIn(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_create(name=data.validated_data["name"], owner=request.user)
        org.my_role = Role.OWNER
        return Response(OrganizationOut(org).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OrganizationIn, responses=OrganizationOut)
    def partial_update(self, request, *args, **kwargs):
        data = OrganizationIn(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_rename(
            organization=self.get_object(), user=request.user, name=data.validated_data["name"]
        )
        return Response(OrganizationOut(org).data)

    def destroy(self, request, *args, **kwargs):
        services.organization_delete(organization=self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberOut(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    user_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user_id", "username", "role", "created_at"]


class MemberRoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberViewSet(
    mixins.ListModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Membership.objects.none()
    serializer_class = MemberOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "patch", "delete"]

    def organization(self) -> tuple[Organization, str]:
        return organization_get(
            user=self.request.user,
            organization_id=self.kwargs["organization_pk"],
            roles=ALL_ROLES,
            action="see members",
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        org, _ = self.organization()
        return Membership.objects.filter(organization=org).select_related("user")

    @extend_schema(request=MemberRoleIn, responses=MemberOut)
    def partial_update(self, request, *args, **kwargs):
        org, role = self.organization()
        data = MemberRoleIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_get(organization=org, membership_id=int(kwargs["pk"]))
        with transaction.atomic():
            membership = services.membership_change_role(
                membership=membership, actor_role=role, role=data.validated_data["role"]
            )
        return Response(MemberOut(membership).data)

    def update(self, request, *args, **kwargs):
        raise Forbidden("Use PATCH to change a member's role.")

    def destroy(self, request, *args, **kwargs):
        org, role = self.organization()
        membership = services.membership_get(organization=org, membership_id=int(kwargs["pk"]))
        services.membership_remove(membership=membership, actor_role=role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationIn(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    username = serializers.CharField(max_length=150, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationOut(serializers.ModelSerializer):
    invited_by = serializers.CharField(source="invited_by.username", read_only=True, allow_null=True)
    status = serializers.SerializerMethodField(help_text="pending, accepted or expired.")
    accepted_by = serializers.CharField(source="accepted_by.username", read_only=True, allow_null=True)

    class Meta:
        model = Invitation
        fields = [
            "id",
            "organization",
            "role",
            "email",
            "username",
            "invited_by",
            "created_at",
            "expires_at",
            "status",
            "accepted_at",
            "accepted_by",
        ]

    def get_status(self, obj: Invitation) -> str:
        return services.invitation_status(obj)


class InvitationCreatedOut(InvitationOut):
    token = serializers.CharField(
        help_text="Give it to the invitee (shown only now): POST invitations/accept/."
    )
    link = serializers.CharField(help_text="The app's accept page for this token (shown only now).")
    email_sent = serializers.BooleanField(
        help_text="The accept link was mailed (false: invited by username, or the mail server failed)."
    )

    class Meta(InvitationOut.Meta):
        fields = [*InvitationOut.Meta.fields, "token", "link", "email_sent"]


class InvitationRenewIn(serializers.Serializer):
    send_email = serializers.BooleanField(
        default=True, help_text="Mail the new link (false: only return it, to copy)."
    )


def _mailed(request, invitation: Invitation, token: str, *, send: bool = True) -> dict:
    """The invitation with its new token and link, mailed when `send` (after the transaction committed)."""
    invitation.token = token
    invitation.link = services.invitation_link(token=token, base_url=request.build_absolute_uri("/"))
    invitation.email_sent = send and services.invitation_email_send(
        invitation=invitation, link=invitation.link
    )
    return InvitationCreatedOut(invitation).data


class InvitationViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Pending invitations of an organization (owners and managers)."""

    queryset = Invitation.objects.none()
    serializer_class = InvitationOut
    lookup_value_regex = r"\d+"

    def organization(self) -> tuple[Organization, str]:
        return organization_get(
            user=self.request.user,
            organization_id=self.kwargs["organization_pk"],
            roles=MANAGING_ROLES,
            action="manage invitations",
        )

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Invitation.objects.none()
        org, _ = self.organization()
        return Invitation.objects.filter(organization=org).select_related("invited_by", "accepted_by")

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=list(INVITATION_STATUSES),
                description="open (default: pending and expired), pending, accepted, expired or all.",
            )
        ]
    )
    def list(self, request, *args, **kwargs):
        rows = invitations_by_status(
            rows=self.get_queryset(), status=request.query_params.get("status", "open")
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(InvitationOut(page, many=True).data)

    @extend_schema(request=InvitationIn, responses={201: InvitationCreatedOut})
    def create(self, request, *args, **kwargs):
        """Invite by e-mail (the accept link is mailed) or by username (give them the link)."""
        org, role = self.organization()
        data = InvitationIn(data=request.data)
        data.is_valid(raise_exception=True)
        invitation, token = services.invitation_create(
            organization=org, actor_role=role, invited_by=request.user, **data.validated_data
        )
        return Response(_mailed(request, invitation, token), status=status.HTTP_201_CREATED)

    @extend_schema(request=InvitationRenewIn, responses=InvitationCreatedOut)
    @action(detail=True, methods=["post"])
    def resend(self, request, *args, **kwargs):
        """A new link (the old one stops working) and a new expiry; mailed unless `send_email` is false."""
        _, role = self.organization()
        data = InvitationRenewIn(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = self.get_queryset().filter(pk=kwargs["pk"]).first()
        if invitation is None:
            raise NotFound("No such invitation.")
        invitation, token = services.invitation_renew(invitation=invitation, actor_role=role)
        return Response(_mailed(request, invitation, token, send=data.validated_data["send_email"]))

    def destroy(self, request, *args, **kwargs):
        org, role = self.organization()
        invitation = self.get_queryset().filter(pk=kwargs["pk"], accepted_at__isnull=True).first()
        if invitation is None:
            raise NotFound("No such invitation.")
        services.invitation_revoke(invitation=invitation, actor_role=role)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationAcceptIn(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    username = serializers.CharField(max_length=150, required=False, help_text="New account only.")
    password = serializers.CharField(
        max_length=200, required=False, write_only=True, help_text="New account only."
    )


class InvitationAcceptView(APIView):
    """Accept an invitation: signed in as the invitee, or with username and password for a new account."""

    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes: list = []
    throttle_scope = "login"

    @extend_schema(request=InvitationAcceptIn, responses={201: MemberOut})
    def post(self, request):
        data = InvitationAcceptIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user if request.user.is_authenticated else None
        membership = services.invitation_accept(user=user, **data.validated_data)
        return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)


class LoginIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=200, write_only=True)


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(allow_null=True)


def _no_store(response: Response) -> Response:
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


class TokenView(APIView):
    """`POST`: a username and password for a new API token (it expires; see `expiry`).
    `DELETE`: log out (revoke the token that authenticates this request)."""

    authentication_classes = [TokenAuthentication]
    throttle_scope = "login"

    def get_permissions(self):
        return [] if self.request.method == "POST" else [IsAuthenticated()]

    def get_authenticators(self):
        # signing in reads no token (an expired one must not turn the login into a 401)
        return [] if getattr(self.request, "method", None) == "POST" else super().get_authenticators()

    @extend_schema(request=LoginIn, responses={200: TokenOut})
    def post(self, request):
        data = LoginIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **data.validated_data)
        if user is None or not user.is_active:
            raise DomainError("Unable to log in with the provided credentials.", code="authorization")
        token, secret = auth.token_issue(user=user)
        return _no_store(Response(TokenOut({"token": secret, "expiry": token.expiry}).data))

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        if request.auth is not None:
            request.auth.delete()
        return _no_store(Response(status=status.HTTP_204_NO_CONTENT))


class TokensRevokeAllView(APIView):
    """Revoke every API token of the signed-in user (log out everywhere)."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        auth.tokens_revoke_all(user=request.user)
        return _no_store(Response(status=status.HTTP_204_NO_CONTENT))


class PasswordChangeIn(serializers.Serializer):
    old_password = serializers.CharField(max_length=200, write_only=True)
    new_password = serializers.CharField(max_length=200, write_only=True)


class PasswordChangeView(APIView):
    """Change your password. Every API token of yours is revoked: sign in again for a new one."""

    throttle_scope = "login"

    @extend_schema(request=PasswordChangeIn, responses={204: None})
    def post(self, request):
        data = PasswordChangeIn(data=request.data)
        data.is_valid(raise_exception=True)
        auth.password_change(user=request.user, **data.validated_data)
        update_session_auth_hash(request._request, request.user)
        return _no_store(Response(status=status.HTTP_204_NO_CONTENT))


class SignupIn(serializers.Serializer):
    username = serializers.RegexField(r"^[\w.@+-]+\Z", max_length=150)
    password = serializers.CharField(max_length=200, write_only=True)
    email = serializers.EmailField(required=False, allow_blank=True)


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class SignupView(APIView):
    """Create an account (only when LABELHUB_SIGNUP_OPEN is on; otherwise accounts come from invitations)."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_scope = "login"

    @extend_schema(request=SignupIn, responses={201: UserOut})
    def post(self, request):
        if not settings.LABELHUB_SIGNUP_OPEN:
            raise Forbidden(
                "Sign-up is closed on this server; ask a manager for an invitation.", code="signup_closed"
            )
        data = SignupIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = auth.user_create(**data.validated_data)
        return Response(UserOut(user).data, status=status.HTTP_201_CREATED)


class PreferencesIn(serializers.Serializer):
    shortcuts = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="{command id: key}, e.g. {\"next-task\": \"g\"}."
    )


class PreferencesView(APIView):
    """Your preferences in the app, kept on the server: remapped keyboard shortcuts (the app's keymap
    holds the commands and their default keys; only your overrides are stored). PUT replaces them."""

    @extend_schema(responses=PreferencesIn)
    def get(self, request):
        from .preferences import preferences_get

        return Response(preferences_get(user=request.user))

    @extend_schema(request=PreferencesIn, responses=PreferencesIn)
    def put(self, request):
        from .preferences import preferences_set

        return Response(preferences_set(user=request.user, data=request.data))
