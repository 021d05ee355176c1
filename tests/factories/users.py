"""Users, optionally in a role (a group made by ``portal.roles.ensure_roles``)."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from portal.roles import ensure_roles


class UserFactory(factory.django.DjangoModelFactory):
    """A user whose password is ``pw-<username>``; ``UserFactory(role=READER)`` puts them in the role's group."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.LazyAttribute(lambda user: make_password("pw-" + user.username))

    @factory.post_generation
    def role(user, create, role, **kwargs):
        if role:
            ensure_roles()
            user.groups.add(Group.objects.get(name=role))
