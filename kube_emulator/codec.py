"""Request body decoding by Content-Type, refusing what kube-apiserver refuses.

Object bodies (create, update, DeleteOptions) are negotiated like the apiserver's
``NegotiateInputSerializer``: no Content-Type means JSON; otherwise the media type (its
parameters ignored) must be one of ``OBJECT_MEDIA_TYPES``, or the answer is 415
``UnsupportedMediaType`` "the body of the request was in an unknown format - accepted media
types include: ...". PATCH bodies must carry one of ``PATCH_MEDIA_TYPES`` (same 415 with
that list); server-side apply is one of them for the apiserver but not implemented here.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from . import errors

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
OBJECT_MEDIA_TYPES = (JSON, YAML, PROTOBUF)
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_MEDIA_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)


def media_type(content_type: Optional[str]) -> str:
    """``application/json; charset=utf-8`` -> ``application/json`` (lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def object_media_type(content_type: Optional[str]) -> str:
    """The media type an object body is decoded as, or a 415 like the apiserver's."""
    mt = media_type(content_type) or JSON
    if mt not in OBJECT_MEDIA_TYPES:
        raise errors.unsupported_media_type(OBJECT_MEDIA_TYPES)
    return mt


def decode_object(raw: bytes, mt: str) -> Any:
    if mt == PROTOBUF:
        from .protobuf import ProtobufError, decode
        try:
            return decode(raw)
        except (ProtobufError, UnicodeDecodeError, IndexError) as e:
            raise errors.unsupported_media_type(
                OBJECT_MEDIA_TYPES, f"the body of the request was in an unknown format - accepted "
                f"media types include: application/json, application/yaml (kube-emulator "
                f"decodes only simple Namespace/Deployment protobuf bodies: {e})")
    if mt == YAML:
        import yaml
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise errors.bad_request(f"error converting YAML to JSON: {e}")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}")


def patch_media_type(content_type: Optional[str]) -> str:
    mt = media_type(content_type)
    if mt == APPLY_PATCH:
        raise errors.unsupported_media_type(
            PATCH_MEDIA_TYPES, "server-side apply is not supported by this emulator "
            "(kube-emulator): use client-side apply (kubectl apply without --server-side), or a "
            "strategic-merge, merge or JSON patch")
    if mt not in PATCH_MEDIA_TYPES:
        raise errors.unsupported_media_type(PATCH_MEDIA_TYPES)
    return mt


def decode_patch(raw: bytes) -> Any:
    try:
        doc = json.loads(raw) if raw.strip() else None
    except ValueError as e:
        raise errors.bad_request(f"error decoding patch: {e}")
    if doc is None:
        raise errors.bad_request("the body of the request was empty")
    return doc
