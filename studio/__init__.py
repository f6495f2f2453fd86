"""The motion studio: draw a mask motion in a web page, generate it, watch it (``python -m studio``).

A page of our own (FastAPI + one HTML page with a ``<canvas>``, plain JavaScript, no build step)
rather than Gradio, for three reasons:

- the work is on one canvas: brush a mask, click keyframes at the scrubbed frame, drag their
  handles, see every object's path and masks over the first frame as you edit. Gradio's image
  editor paints but knows no paths or keyframes; its peers' demos (DragAnything, MagicMotion) collect
  clicks through ``Image.select`` and redraw the picture on the server after every click. A canvas
  redraws locally and asks the server only for the renderer's masks;
- nothing new to install for the server: FastAPI, Starlette and uvicorn are already pinned (Prefect's
  own server runs on them), where Gradio 6 would bring some thirty packages into a locked stack;
- the browser tests drive plain elements with stable ids, not a generated front end.

The page is a client of the project's own code: the spec and renderer of ``tasks.masks.sequences``,
the generate loop and checkpoint loader of ``tasks.generate``, the evaluate stage's IoU and
segmenter, the masks stage's SAM. Nothing here is imported by a stage.
"""
