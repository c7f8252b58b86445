# gunicorn config for qqgate:
#   QQGATE_CONFIG=/etc/qqgate/gate.ini gunicorn -c deploy/gunicorn.conf.py
# The settings live in the package (qqgate/gunicorn_conf.py) so that `qqgate serve` uses the same.
from qqgate.gunicorn_conf import *  # noqa: F403
from qqgate.gunicorn_conf import (  # noqa: F401 - hooks are looked up by name
    child_exit,
    on_exit,
    on_reload,
    on_starting,
)
