"""The stage modules register on the worker's app when imported, so the app exists first
(created as the worker creates it, from the settings it is handed)."""

from ops.settings import get_settings
from streams.app import create_app

create_app(get_settings())
