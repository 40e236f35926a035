"""The capability runtime on asyncio: objects, promises, far references, sessions.

```python
async with Runtime(netlayers=[...]) as rt:
    sturdy = rt.register(greeter)            # sturdyref for a local object
    ref = await rt.enliven(sturdyref)        # connect (or reuse) and fetch
    result = await ref("hello", 42)          # call and await
    car = ref.send("make").send("drive")     # pipelined: no waiting in between
```
"""

from charter.ocapn.runtime.errors import HandoffError, PromiseBrokenError, RuntimeClosedError
from charter.ocapn.runtime.peer import PeerSession
from charter.ocapn.runtime.refs import Promise, RemoteRef, Resolver, promise_pair
from charter.ocapn.runtime.runtime import Runtime

__all__ = [
    "HandoffError",
    "PeerSession",
    "Promise",
    "PromiseBrokenError",
    "RemoteRef",
    "Resolver",
    "Runtime",
    "RuntimeClosedError",
    "promise_pair",
]
