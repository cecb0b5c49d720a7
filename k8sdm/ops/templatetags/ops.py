from django import template

from k8sdm.ops import display

register = template.Library()


@register.filter
def age(value, now):
    """How long before `now` `value` was, with seconds ('12.3 s', '4 min 2 s')."""
    if value is None or now is None:
        return display.EMPTY
    return display.seconds_text((now - value).total_seconds())


@register.filter
def seconds(value):
    return display.seconds_text(value)


@register.filter
def span(value):
    """A timedelta as '15 min'."""
    return display.seconds_text(value.total_seconds()) if value is not None else display.EMPTY
