"""asyncssh, imported only when SSH is used, without its known deprecation noise.

asyncssh (up to at least 2.24) refers to DSA key classes at import, and
``cryptography`` 51 deprecated DSA: every import then prints about ten lines of
``CryptographyDeprecationWarning`` on stderr (in the CLI, in the exported
scheduler and as red boxes in notebooks). :func:`import_asyncssh` imports it
with exactly that warning ignored — by category and by the warning's module
(asyncssh's own) — and only for the duration of the import. Nothing else is
filtered, and warnings are never switched off globally.

Only the modules that really speak SSH (``toolkit.devices.transport.ssh`` and
``toolkit.devices.transport.shell``) call it, so ``import toolkit.devices`` and every
command that does not use SSH never import asyncssh at all.
"""

from __future__ import annotations

import sys
import warnings
from types import ModuleType

__all__ = ["import_asyncssh"]

#: the modules whose warnings are filtered: asyncssh and its submodules
ASYNCSSH_MODULES = r"asyncssh(\..*)?$"


def import_asyncssh() -> ModuleType:
    """The ``asyncssh`` module, imported without cryptography's DSA deprecation warnings."""
    loaded = sys.modules.get("asyncssh")
    if loaded is not None:
        return loaded
    with warnings.catch_warnings():
        try:
            from cryptography.utils import CryptographyDeprecationWarning
        except ImportError:  # an older or newer cryptography without the class
            pass
        else:
            warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning,
                                    module=ASYNCSSH_MODULES)
        import asyncssh
    return asyncssh
