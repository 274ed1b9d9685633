"""WhiteNoise's static files without taking every request off the event loop.

WhiteNoise's middleware is synchronous only. In Django's async stack that makes
every request, a streamed API completion included, hop from the event loop to a
thread at that middleware and back again for the view, and hold that thread
until the response is made. ``StaticFiles`` looks the path up in WhiteNoise's
table on the loop (a dict lookup) and only a static file's response is made in a
thread.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFiles(WhiteNoiseMiddleware):
    sync_capable = async_capable = True

    def __init__(self, get_response, **kwargs):
        super().__init__(get_response, **kwargs)
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request):
        if self.autorefresh:  # DEBUG: finding the file looks at the disk
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve, thread_sensitive=False)(static_file, request)
        return await self.get_response(request)
