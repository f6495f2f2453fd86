"""The ``base`` stage: the base models every later stage starts from.

In the toy world it trains them from scratch (tasks.base.build); in the sd14 world it checks the
local SD1.4 / ControlNet / open_clip weights named in params (tasks.base.sd14).
"""
