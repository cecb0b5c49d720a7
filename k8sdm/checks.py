"""System checks of the authentication and policy settings (run by `manage.py check`, `check --deploy`,
`migrate` and runserver).

The one that matters most: in production, `header` mode must be bound to the gateway (trusted
proxy addresses and/or a shared secret); otherwise anyone who reaches the api is whoever they say.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security)
def check_authentication(app_configs=None, **kwargs):
    issues = []
    production = settings.K8SDM_ENV == "production"
    modes = settings.K8SDM_AUTH_MODES
    networks = []
    for cidr in settings.K8SDM_TRUSTED_PROXIES:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            issues.append(Error(f"K8SDM_TRUSTED_PROXIES: {cidr!r} is not an IP address or CIDR.", id="k8sdm.E002"))
    if "header" in modes:
        if production and not settings.K8SDM_TRUSTED_PROXIES and not settings.K8SDM_GATEWAY_SECRET:
            issues.append(Error(
                "Authentication mode `header` in production without K8SDM_TRUSTED_PROXIES or K8SDM_GATEWAY_SECRET: "
                "any client could claim any identity.",
                hint="Set K8SDM_TRUSTED_PROXIES to the gateway's addresses (CIDRs) and/or K8SDM_GATEWAY_SECRET "
                "to a secret only the gateway sends; or use jwt/token modes only.",
                id="k8sdm.E001",
            ))
        if production and any(net.prefixlen == 0 for net in networks):
            issues.append(Error(
                "K8SDM_TRUSTED_PROXIES trusts every address (a /0 network) with authentication mode `header`.",
                hint="List only the gateway's addresses.", id="k8sdm.E003",
            ))
        if settings.K8SDM_GATEWAY_SECRET and len(settings.K8SDM_GATEWAY_SECRET) < 32:
            issues.append(Warning("K8SDM_GATEWAY_SECRET is shorter than 32 characters.", id="k8sdm.W001"))
    if "jwt" in modes:
        if not settings.K8SDM_JWT_JWKS_URL and not settings.K8SDM_JWT_PUBLIC_KEY_FILE:
            issues.append(Error(
                "Authentication mode `jwt` needs K8SDM_JWT_JWKS_URL or K8SDM_JWT_PUBLIC_KEY_FILE.", id="k8sdm.E004"
            ))
        if production and not (settings.K8SDM_JWT_ISSUER and settings.K8SDM_JWT_AUDIENCE):
            issues.append(Warning(
                "Authentication mode `jwt` without K8SDM_JWT_ISSUER and K8SDM_JWT_AUDIENCE accepts any token the "
                "keys signed, including ones meant for other services.", id="k8sdm.W002",
            ))
    if production and settings.CACHES["default"]["BACKEND"].endswith("LocMemCache"):
        issues.append(Warning(
            "CACHE_URL is not set: rate limits are counted per api process, not shared.",
            hint="Set CACHE_URL=redis://... (Redis or Valkey).", id="k8sdm.W003",
        ))
    issues.extend(_policy_issues())
    return issues


def _policy_issues() -> list:
    from users_app.policy import LIMIT_FIELDS, default_limit, limit_valid

    issues = []
    for name in LIMIT_FIELDS:
        value = default_limit(name)
        if not value:
            continue
        if not limit_valid(name, value):
            issues.append(Error(f"K8SDM_POLICY_{name.upper()}={value!r} is not a valid limit.", id="k8sdm.E005"))
    return issues
