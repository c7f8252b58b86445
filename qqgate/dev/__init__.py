"""Development tools, kept apart from the security code: ``fakeqq`` (a fake graph.qq.com),
``sample`` (an app to put behind the gate) and ``demo`` (both behind the gate on loopback, what
``qqgate demo`` runs). Never deploy them."""
