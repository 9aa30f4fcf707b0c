"""Raw llama-cpp-python on the messages `ragchat ask QUESTION` would send (for bench/speed.py).

Prints JSON: tokens generated and tokens/s after the first token, plus the token count of
the answer ragchat gave (passed in $ANSWER), counted with the same tokenizer.
"""

from __future__ import annotations

import json
import os
import sys
import time

from llama_cpp import Llama

from ragchat.app import App
from ragchat.config import load_settings_explained, resolve_home
from ragchat.llms import REPEAT_PENALTY
from ragchat.prompting import pack


def main() -> None:
    question, max_tokens = sys.argv[1], int(sys.argv[2])
    home = resolve_home()
    app = App(home, load_settings_explained(home)[0])
    engine = app.engine()
    hits = engine.retriever.retrieve(question, engine.top_k)
    messages = pack(app.llm, engine.prompts, question, hits, max_tokens).messages
    llm = app.llm
    llama = Llama(
        model_path=str(llm.model_path),
        n_ctx=llm.n_ctx,
        n_threads=llm.threads,
        n_threads_batch=llm.threads,
        seed=0,
        verbose=False,
    )
    first = last = 0.0
    text = ""
    for chunk in llama.create_chat_completion(
        messages=messages,
        max_tokens=max_tokens,
        temperature=0.0,
        repeat_penalty=REPEAT_PENALTY,  # as ragchat asks: the same sampling, like for like
        stream=True,
    ):
        piece = chunk["choices"][0].get("delta", {}).get("content") or ""
        if piece:
            last = time.perf_counter()
            first = first or last
            text += piece
    count = len(llama.tokenize(text.encode(), add_bos=False, special=True))
    ours = len(llama.tokenize(os.environ.get("ANSWER", "").encode(), add_bos=False, special=True))
    print(
        json.dumps(
            {"tokens": count, "tokens_per_s": (count - 1) / (last - first), "ragchat_tokens": ours}
        )
    )


if __name__ == "__main__":
    main()
