"""The admin of the shell's accounts: API tokens (portal.authentication)."""

from django.contrib import admin
from knox.models import AuthToken

# API tokens: knox's own admin lists the digest and puts the key's first 15 characters in
# an editable form field; here the admin sees whose token it is and when it expires, may
# shorten the expiry or delete (revoke) it, and never sees any part of the key. Tokens
# are issued with `manage.py drf_create_token` (the key is printed once).
admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("user", "created", "expiry")
    list_filter = ("expiry",)
    search_fields = ("user__username",)
    fields = ("user", "created", "expiry")
    readonly_fields = ("user", "created")
    ordering = ("-created",)

    def has_add_permission(self, request):
        return False
