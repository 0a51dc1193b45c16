"""Generated from the library's definitions (ffi/src/wire.rs, ffi/src/types.rs, ffi/src/error.rs, engine::queue::REQUEST_FIELDS) by ffi/tests/wire.rs; do not edit. `VOLLEY_BLESS=1 cargo test -p volley-ffi --test wire` rewrites it."""

ABI_VERSION = 1
RECORD_KIND = 0
RECORD_FLAGS = 1
RECORD_CODE = 2
RECORD_KEY = 4
RECORD_GENERATION = 8
RECORD_USER = 16
RECORD_DATA_LEN = 24
RECORD_TOPIC_LEN = 28
RECORD_HEADER = 32
RECORD_ALIGN = 8
PACKED_INLINE_MAX = 16384
PACKED_MIN_BUFFER = 65536
PACKED_DATA_BY_ADDRESS = 128
PACKED_TOPIC_BY_ADDRESS = 64
EVENT_BINARY = 1
EVENT_ACTIVE = 2
EVENT_KIND_UPGRADE = 1
EVENT_KIND_REQUEST = 2
EVENT_KIND_OPEN = 3
EVENT_KIND_MESSAGE = 4
EVENT_KIND_CLOSE = 5
EVENT_KIND_DRAIN = 6
EVENT_KIND_PING = 7
EVENT_KIND_PONG = 8
EVENT_KIND_DROPPED = 9
EVENT_KIND_TOPIC = 10
SEND_TEXT = 0
SEND_BINARY = 1
SEND_COMPRESS = 2
SEND_NO_COMPRESS = 4
STOP_GRACEFUL = 0
STOP_NOW = 1
STOP_NO_WAIT = 2
STOP_LISTEN_ONLY = 4
RESULT_OK = 0
RESULT_NULL_PARAMETER = 100
RESULT_INVALID_ARGUMENT = 101
RESULT_WRONG_THREAD = 102
RESULT_WRONG_MODE = 103
RESULT_ABI_MISMATCH = 104
RESULT_CLOSED = 200
RESULT_NOT_PENDING = 201
RESULT_IO = 300
RESULT_TLS = 301
RESULT_BUSY = 302
RESULT_STOPPED = 303
RESULT_PANIC = 900
# The fixed part of a record, for struct.Struct.
RECORD_FORMAT = "<BBHIQQII"
# The packed request's fields in order: (name, "bytes" | "list").
REQUEST_FIELDS = (
    ("method", "bytes"),
    ("path", "bytes"),
    ("query", "bytes"),
    ("headers", "list"),
    ("params", "list"),
    ("protocols", "list"),
    ("address", "bytes"),
    ("secure", "bytes"),
    ("body", "bytes"),
)
