"""The image APIs existing clients already speak, beside /api/v1 and translated onto the same sampling service:
the OpenAI Images API (openai.py, under /v1/) and AUTOMATIC1111's web UI API (a1111.py, under /sdapi/v1/).
shapes.py holds each one's error body."""
