"""Fixtures for the attestation tests: one lab signing chain and openssl-made chains, each made once."""

from __future__ import annotations

import shutil
from collections.abc import Callable

import pytest
from attestation_helpers import OpensslChain, make_openssl_chain

from hcibenefit.lab.signing import LabSigningChain


@pytest.fixture(scope="session")
def lab_chain() -> LabSigningChain:
    return LabSigningChain.generate()


@pytest.fixture(scope="session")
def openssl_chains(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], OpensslChain]:
    """openssl_chains("rsa" | "ec"): made once per session and kind."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    made: dict[str, OpensslChain] = {}

    def get(kind: str) -> OpensslChain:
        if kind not in made:
            made[kind] = make_openssl_chain(tmp_path_factory.mktemp(f"openssl-{kind}"), kind)
        return made[kind]

    return get
