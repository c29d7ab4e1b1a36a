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

#: Volets Liaison only checks, whose CI-SIS schematron names no document templateId, so that the
#: schematron index (router.schematron_index) cannot find them alone: templateId → schematron, as the
#: ANS examples of TestContenuCDA-3-0 declare them. Every other volet's schematron is found by its own text.
UNNAMED_SCHEMATRONS: tuple[tuple[str, str], ...] = (
    ("1.2.250.1.213.1.1.1.5.4", "CI-SIS_CSE-MDE_2023.01.sch"),
    ("1.2.250.1.213.1.1.1.18", "CI-SIS_OPH-CR-RTN_2022.01.sch"),
)
