"""The llama.cpp backend's request: what it asks of llama.cpp."""

from __future__ import annotations

from ragchat.llms import REPEAT_PENALTY, LlamaCppLLM


class RecordingLlama:
    """Stands in for llama_cpp.Llama: records the request, streams one piece."""

    def __init__(self) -> None:
        self.requests: list[dict] = []

    def create_chat_completion(self, **request):
        self.requests.append(request)
        yield {"choices": [{"delta": {"content": "Yes."}, "finish_reason": "stop"}]}


def test_answers_are_asked_with_a_repeat_penalty():
    llm = LlamaCppLLM("bundled")
    llm.__dict__["llama"] = llama = RecordingLlama()  # the cached, loaded model
    assert "".join(llm.stream([{"role": "user", "content": "Hi"}], 32, 0.0)) == "Yes."
    # llama.cpp's own default is 1.0: no penalty, and the bundled model loops ("1. 1. 1. …")
    assert llama.requests[0]["repeat_penalty"] == REPEAT_PENALTY > 1.0
