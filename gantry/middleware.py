"""The base of Gantry's own middleware."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncAndAsyncMiddleware:
    """Runs in whichever stack Django builds (sync under WSGI and the test client, async under
    uvicorn) without a thread hop. Subclasses implement ``sync_call`` and ``async_call``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.async_call(request)
        return self.sync_call(request)

    def sync_call(self, request):
        raise NotImplementedError

    async def async_call(self, request):
        raise NotImplementedError
