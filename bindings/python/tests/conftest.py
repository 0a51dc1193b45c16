import logging

# Handlers that raise on purpose log a traceback; keep test output readable.
logging.getLogger("volley").setLevel(logging.CRITICAL)
