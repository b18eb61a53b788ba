"""Task messages as each kombu release writes them, sent with Debian's Celery.

Debian's python3-celery (5.2) runs on kombu 5.2, whose JSON has no typed
values. Codabench's site runs Celery 5.6 (kombu 5.6) since March 2026, and
kombu 5.3 and later write some Python objects as

    {"__type__": NAME, "__value__": VALUE}

(kombu/utils/json.py, JSONEncoder.default and the register_type calls at the
end of the file). This module registers kombu serializers that write JSON as
those releases do, so the stand-in's Celery sends byte for byte the body the
site's Celery would. What each release writes, read from its json.py:

  5.3.0       uuid.UUID -> {"hex": o.hex, "version": o.version}
  5.3.1..5.6  uuid.UUID -> {"hex": o.hex}
  5.3+        datetime -> o.isoformat()   (type "datetime")
              date     -> o.isoformat()   (type "date")
              time     -> o.isoformat()   (type "time")
              Decimal  -> str(o)          (type "decimal")
              bytes    -> the text ("bytes"), or base64 when not UTF-8 ("base64")
  up to 5.2   none of these: a UUID, a Decimal, a date are written as text.

Celery 5.3+ also adds three headers to every task message (celery/app/amqp.py,
as_task_v2): replaced_task_nesting, stamped_headers and stamps.
"""

import base64
import datetime
import decimal
import json
import uuid

FORMATS = ("5.2", "5.3.0", "5.6")
DEFAULT = "5.6"  # what Codabench's site sends today


def _as(t, v):
    return {"__type__": t, "__value__": v}


def _encoder_for(fmt):
    if fmt == "5.3.0":
        uuid_value = lambda o: {"hex": o.hex, "version": o.version}  # noqa: E731
    else:
        uuid_value = lambda o: {"hex": o.hex}  # noqa: E731

    class Encoder(json.JSONEncoder):
        def default(self, o):
            # datetime before date: a datetime is a date too.
            if isinstance(o, datetime.datetime):
                return _as("datetime", o.isoformat())
            if isinstance(o, datetime.date):
                return _as("date", o.isoformat())
            if isinstance(o, datetime.time):
                return _as("time", o.isoformat())
            if isinstance(o, decimal.Decimal):
                return _as("decimal", str(o))
            if isinstance(o, uuid.UUID):
                return _as("uuid", uuid_value(o))
            if isinstance(o, bytes):
                try:
                    return _as("bytes", o.decode("utf-8"))
                except UnicodeDecodeError:
                    return _as("base64", base64.b64encode(o).decode("utf-8"))
            return super().default(o)

    return Encoder


def serializer_name(fmt):
    """The kombu serializer to send with; None for kombu 5.2's own json."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown kombu format {fmt!r}; one of {FORMATS}")
    if fmt == "5.2":
        return None
    name = "json-kombu-" + fmt
    from kombu.serialization import registry
    from kombu.utils.json import loads

    if name not in registry._encoders:
        encoder = _encoder_for(fmt)
        registry.register(name, lambda obj: json.dumps(obj, cls=encoder), loads,
                          content_type="application/json", content_encoding="utf-8")
        # Registering points application/json's decoder at this name; what the
        # stand-in reads back (control replies) keeps kombu's own json.
        registry.type_to_name["application/json"] = "json"
    return name


def extra_headers(fmt):
    """Headers Celery of that release adds beside Celery 5.2's."""
    if fmt == "5.2":
        return {}
    return {"replaced_task_nesting": 0, "stamped_headers": None, "stamps": {}}


def site_run_args(run_args):
    """run_args as the site hands them to send_task: the secret is the
    submission's uuid.UUID (a UUIDField). kombu 5.2 writes it as its dashed
    text; 5.3 and later as a typed object."""
    out = dict(run_args)
    out["secret"] = uuid.UUID(str(run_args["secret"]))
    return out


def _uuid(value):
    return uuid.UUID(hex=value) if isinstance(value, str) else uuid.UUID(**value)


_DECODERS = {
    "datetime": datetime.datetime.fromisoformat,
    "date": lambda v: datetime.datetime.fromisoformat(v).date(),
    "time": datetime.time.fromisoformat,
    "decimal": decimal.Decimal,
    "uuid": _uuid,
    "bytes": lambda v: v.encode("utf-8"),
    "base64": lambda v: base64.b64decode(v.encode("utf-8")),
}


def object_hook(o):
    """kombu 5.6's loader: typed objects back to Python objects."""
    if o.keys() == {"__type__", "__value__"}:
        decoder = _DECODERS.get(o["__type__"])
        if decoder is None:
            raise ValueError("Unsupported type", o["__type__"])
        return decoder(o["__value__"])
    return o


def loads(body):
    """A task body as a worker on kombu 5.6 reads it."""
    return json.loads(body, object_hook=object_hook)
