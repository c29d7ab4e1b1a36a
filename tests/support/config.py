"""Configuration tests' one assertion: a section's parser refuses its input and names the key."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from router.errors import ConfigError


def refused_key(parse: Callable[..., object], *args, **kwargs) -> str:
    """The key of the ConfigError ``parse(*args, **kwargs)`` raises (its message leads with that key)."""
    with pytest.raises(ConfigError) as caught:
        parse(*args, **kwargs)
    assert str(caught.value).startswith(f"{caught.value.key}: ")
    return caught.value.key
