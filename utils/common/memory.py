"""How much memory a run needs against what the machine has: a run that cannot fit stops
before any work with one sentence, instead of an allocation traceback (or the system's
out-of-memory killer) hours later."""
import os

from .errors import UserError
from .io import format_bytes


def available_bytes():
    """Memory the system can give this process now (Linux: MemAvailable of /proc/meminfo;
    elsewhere the physical memory), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(needed, what, fix):
    """A UserError when ``needed`` bytes (for ``what``, e.g. "the gradients of 10^10
    networks") exceed the memory available; ``fix`` says what to change."""
    have = available_bytes()
    if have is not None and needed > have:
        raise UserError(f"{what} need {format_bytes(needed)} of memory and this machine has "
                        f"{format_bytes(have)} available; {fix}")
