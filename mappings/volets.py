"""The volets Liaison renders and checks: one line per volet.

Each volet is a module of ``mappings/`` ending in its :class:`router.volets.Volet`
description (templateIds, type code, renderer, schematron, code tables). To add
one, write that module and add its ``VOLET`` here; the render stage, the
pre-send schematron check and ``liaison validate`` read this registry, handed to
them by the composition root.
"""

from __future__ import annotations

from mappings import cda_level1, cr_bio, ldl_ses
from router.volets import VoletRegistry

#: In lookup order: a TXA-2 claimed by a structured volet wins over the level-1 fallback.
REGISTRY = VoletRegistry((
    ldl_ses.VOLET,
    cr_bio.VOLET,
    cda_level1.VOLET,
))
