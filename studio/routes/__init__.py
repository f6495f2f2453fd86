"""The studio's JSON API, one router per job: the page and its start-up settings (``page``), what the page
uploads or cuts out (``inputs``), previews and loaded specs (``specs``), the video queue (``jobs``) and the
finished runs (``runs``). Each ``router(studio)`` answers for one ``Studio``; refusals are ``refusals``'."""
