"""Organizations and their members."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from labelhub.core.errors import Forbidden, NotFound

from . import services
from .models import Membership, Organization, Role
from .selectors import ALL_ROLES, organizations_for, role_require


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


class MemberIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class MemberRoleIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Membership.objects.none()
    serializer_class = MemberOut
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete"]

    def organization(self) -> tuple[Organization, str]:
        org = organizations_for(user=self.request.user).filter(pk=self.kwargs["organization_pk"]).first()
        if org is None:
            raise NotFound("No such organization.")
        role = role_require(
            user=self.request.user, organization_id=org.id, roles=ALL_ROLES, action="see members"
        )
        return org, role

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Membership.objects.none()
        org, _ = self.organization()
        return Membership.objects.filter(organization=org).select_related("user")

    @extend_schema(request=MemberIn, responses={201: MemberOut})
    def create(self, request, *args, **kwargs):
        org, role = self.organization()
        data = MemberIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.membership_add(organization=org, actor_role=role, **data.validated_data)
        return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)

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


class TokenView(ObtainAuthToken):
    """Exchange a username and password for the API token (header `Authorization: Token <key>`)."""

    authentication_classes: list = []
    permission_classes: list = []
