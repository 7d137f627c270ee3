"""FastAPI dependencies as ``Annotated`` aliases, so routers stay short."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from consentry.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_unit_of_work(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """One transaction per request that asks for it; committed after the endpoint returns."""
    async with runtime.database.unit_of_work() as session:
        yield session


UnitOfWorkDep = Annotated[AsyncSession, Depends(get_unit_of_work)]
