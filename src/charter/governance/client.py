"""A client of a node's governance REST API: builds, signs and sends members' requests.

Used by ``charter gov`` and the demo; takes an ``httpx.AsyncClient`` whose
``base_url`` is a node's API. Errors answered as problem+json become ``GovClientError``
carrying the problem's ``code``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from charter.crypto.keys import Ed25519PrivateKey
from charter.governance.audit import MemoryState
from charter.governance.errors import GovernanceError
from charter.governance.model import Action
from charter.governance.requests import (
    Ballot,
    Payload,
    Propose,
    SignedRequest,
    Withdraw,
    make_request,
    sign_request,
)

Wait = Literal["accepted", "committed"]


class GovClientError(GovernanceError):
    """The node refused or could not be reached; ``code`` is the problem's code."""

    code = "gov.client"

    def __init__(self, message: str, *, code: str | None = None, status: int = 0) -> None:
        super().__init__(message, code=code)
        self.status = status


class GovClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self._network_id: bytes | None = None

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self.http.request(method, f"/api/v1/gov{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise GovClientError(f"cannot reach {self.http.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                problem = response.json()
                code = str(problem.get("code", "gov.client"))
                detail = str(problem.get("detail", response.text))
            except ValueError:
                code, detail = "gov.client", response.text[:200]
            raise GovClientError(detail, code=code, status=response.status_code)
        return response.json()

    async def network_id(self) -> bytes:
        if self._network_id is None:
            doc = await self.constitution()
            if not doc.get("network_id"):
                raise GovClientError("the node names no network id", code="gov.network")
            self._network_id = bytes.fromhex(doc["network_id"])
        return self._network_id

    async def sign(
        self,
        member: str,
        key: Ed25519PrivateKey,
        payload: Payload,
        *,
        created_ms: int | None = None,
        nonce: bytes | None = None,
    ) -> SignedRequest:
        request = make_request(
            await self.network_id(), member, payload, created_ms=created_ms, nonce=nonce
        )
        return sign_request(request, key)

    async def send(self, signed: SignedRequest, wait: Wait = "committed") -> dict[str, Any]:
        """Send a signed request to the route its payload belongs to."""
        payload = signed.request.payload
        if isinstance(payload, Propose):
            path = "/proposals"
        elif isinstance(payload, Ballot):
            path = f"/proposals/{payload.proposal_id}/ballots"
        else:
            path = f"/proposals/{payload.proposal_id}/withdraw"
        body = {"request": base64.b64encode(signed.encode()).decode("ascii")}
        result: dict[str, Any] = await self._call("POST", path, json=body, params={"wait": wait})
        return result

    async def propose(
        self,
        member: str,
        key: Ed25519PrivateKey,
        actions: Sequence[Action],
        title: str = "",
        wait: Wait = "committed",
    ) -> dict[str, Any]:
        signed = await self.sign(member, key, Propose(title, tuple(actions)))
        return await self.send(signed, wait)

    async def vote(
        self, member: str, key: Ed25519PrivateKey, pid: str, approve: bool, wait: Wait = "committed"
    ) -> dict[str, Any]:
        return await self.send(await self.sign(member, key, Ballot(pid, approve)), wait)

    async def withdraw(
        self, member: str, key: Ed25519PrivateKey, pid: str, wait: Wait = "committed"
    ) -> dict[str, Any]:
        return await self.send(await self.sign(member, key, Withdraw(pid)), wait)

    async def constitution(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/constitution")
        return result

    async def proposals(self, state: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        result = await self._call("GET", "/proposals", params=params)
        return list(result["items"])

    async def proposal(self, pid: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", f"/proposals/{pid}")
        return result

    async def export(self) -> MemoryState:
        """The node's governance tables, to audit them here."""
        doc = await self._call("GET", "/export")
        try:
            tables = {
                str(t): {str(k): base64.b64decode(v, validate=True) for k, v in rows.items()}
                for t, rows in doc["tables"].items()
            }
        except (KeyError, AttributeError, ValueError, TypeError):
            raise GovClientError("the node's export is malformed", code="gov.audit") from None
        return MemoryState(tables)

    async def members(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/members"))["items"])

    async def nodes(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "/nodes"))["items"])


__all__ = ["GovClient", "GovClientError"]
