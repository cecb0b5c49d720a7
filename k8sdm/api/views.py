"""ApiViewMixin: what every API view checks after identity and rate limit, before any query.

- Query parameters: only those the action declares (a list: its filters, `cursor`, `page_size`;
  anything else: none). An unknown one is a 400 naming it (a typo such as `?identifer=web` must not
  silently return everything), with a "did you mean" when one is close; one given twice is a 400.
- Path parameters: each checked against its own rule (`path_params`), so `a%00` or `wéb` is a 400
  naming the parameter, never a database query.
- A body without a Content-Type is a 415 (DRF would read it as an empty body).
- A 405 says where to go instead: each view's `method_hint(method)` (see errors.exception_handler).

Views name their rules; the checks run for methods the view answers (others get their 405 first).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation

from k8sdm.api.errors import InvalidInput
from k8sdm.api.fields import unknown_name


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """DRF's negotiation without its `?format=` override: the API speaks JSON only, so `format` is
    an unknown query parameter like any other (a 400 naming it), not a 404."""

    settings = SimpleNamespace(URL_FORMAT_OVERRIDE=None)


class ApiViewMixin:
    content_negotiation_class = JsonOnlyNegotiation
    # path keyword -> a validator raising rest_framework's ValidationError
    path_params: dict[str, Callable[[str], object]] = {}
    # the list action's filters (a Serializer whose fields are the query parameters)
    filter_serializer_class = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if getattr(self, request.method.lower(), None) is None:
            return  # not answered here: the 405 comes next
        self.check_query_params(request)
        self.check_path_params(kwargs)
        self.check_body_type(request)

    def allowed_query_params(self) -> set[str]:
        if getattr(self, "action", None) != "list":
            return set()
        names = set(self.filter_serializer_class().fields) if self.filter_serializer_class else set()
        paginator = getattr(self, "paginator", None)
        if paginator is not None:
            names |= {paginator.cursor_query_param, paginator.page_size_query_param}
        return names

    def check_query_params(self, request) -> None:
        allowed = self.allowed_query_params()
        fields: dict[str, list[str]] = {}
        for name, values in request.query_params.lists():
            if name not in allowed:
                fields[name] = [unknown_name("query parameter", name, allowed)]
            elif len(values) > 1:
                fields[name] = ["given more than once"]
        if not fields:
            return
        unknown = sorted(name for name in fields if name not in allowed)
        if unknown:
            accepted = ", ".join(sorted(allowed)) if allowed else "none"
            message = f"Unknown query parameter(s): {', '.join(unknown)}. Accepted here: {accepted}."
            raise InvalidInput(message, code="unknown_query_parameter", fields=fields)
        raise InvalidInput("A query parameter was given more than once.", fields=fields)

    def check_path_params(self, kwargs: dict) -> None:
        fields: dict[str, list[str]] = {}
        for name, validate in self.path_params.items():
            if name not in kwargs:
                continue
            try:
                validate(kwargs[name])
            except exceptions.ValidationError as exc:
                fields[name] = [str(reason) for reason in exc.detail]
        if fields:
            raise InvalidInput(f"Invalid {' and '.join(fields)} in the path.", fields=fields)

    @staticmethod
    def check_body_type(request) -> None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # ApiMiddleware has answered 400 already
        if length > 0 and not request.META.get("CONTENT_TYPE"):
            raise exceptions.UnsupportedMediaType("", detail="The body has no Content-Type header.")

    def path_value(self, name: str) -> str:
        """A path parameter to echo in a message: itself if valid, else the placeholder {name}."""
        try:
            self.check_path_params({name: self.kwargs[name]})
        except (InvalidInput, KeyError):
            return "{" + name + "}"
        return self.kwargs[name]

    def method_hint(self, method: str) -> str:
        """A sentence saying where `method` is answered instead ('' for none)."""
        return ""
