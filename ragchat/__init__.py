"""ragchat: private question answering over your own documents.

The package, one line a module, in the order a question travels (tests/test_structure.py
keeps this list and the files in step):

    __init__.py          this map, and the version
    loaders.py           a file becomes pages of text split into blocks (Markdown, HTML, PDF, code)
    isolation.py         reading PDFs in a worker process, with a time limit and a memory cap
    chunking.py          blocks become chunks that fit the embedder, counted with its tokenizer
    embedders.py         text to vectors: int8 ONNX or torch sentence-transformers models
    onnx_export.py       exporting a sentence-transformers model to int8 ONNX, once per model
    bundled.py           the offline models of ragchat[bundled], found without importing them
    hub.py               models from the Hugging Face hub: the cache first, a download if reachable
    ids.py               document and chunk ids: made and parsed here only
    store.py             the vector store (Chroma, local or a server); ``Hit``, one found chunk
    manifest.py          which files each collection holds (SQLite), its record, the write lock
    server_manifest.py   the manifest of a store shared through a Chroma server, and its local cache
    lexical.py           the BM25 index of a collection's chunks (tantivy)
    document_vectors.py  one vector per document (NAME__docs): the mean of its chunks' vectors
    collection.py        one collection: its record, embedder check, creation, counts, and drop()
    ingest.py            incremental ingest: load, chunk, embed, store what changed
    retrieval.py         ranking: dense, lexical and hybrid (fused) retrievers over a collection
    prompting.py         prompt templates and packing excerpts into the LLM's token budget
    llms.py              LLM backends: llama.cpp for a GGUF, any OpenAI-compatible API
    engine.py            the answer loop: condense a follow-up, retrieve, pack, stream the answer
    citations.py         checking an answer's [n] markers and quotations against its excerpts
    explore.py           similar documents, k-means clusters, the 2-D map's groups, the spectrum
    map_drawing.py       drawing a document map as an offline HTML page or a PNG
    evaluation.py        retrieval metrics on BEIR data and gold sets, and ragchat eval's runs
    doctor.py            ragchat doctor: store, manifest and index agree? models there? private?
    config.py            settings: one typed model, flag > environment > config file > default
    errors.py            the errors ragchat raises on purpose, each naming its fix
    text.py              neutral string helpers: sanitize, shorten, spans, locations, URLs
    app.py               wiring: the store, collection, models and engine the settings name
    render.py            what ragchat shows: rich renderables of answers, sources and tables
    repl.py              ragchat chat: the prompt-toolkit REPL and its slash commands
    cli_options.py       the options every command shares (help from Settings), errors, consoles
    cli.py               ragchat: ingest, ask, chat, search, eval, doctor, config, status
    cli_explore.py       the commands similar, cluster, map and spectrum
    supervisor.py        the entry point: runs all but light commands in a watched child process
    interrupts.py        Ctrl-C that is never lost: a flag beside KeyboardInterrupt, checked after native code
    __main__.py          python -m ragchat
"""

__version__ = "0.1.0"
