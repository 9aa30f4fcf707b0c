"""ragchat: private question answering over your own documents.

The package, one line a module, in the order a question travels (tests/test_structure.py
keeps this list and the files in step):

    __init__.py          this map, and the version
    pages.py             what a loader returns (Page, Block) and shares: decoding, Markdown, HTML
    loaders.py           which loader reads which file; text, Markdown, HTML, code and PDF
    office.py            Word, PowerPoint, Excel, CSV and RTF files as pages
    opendocument.py      OpenDocument text, spreadsheets and presentations as pages
    mail.py              e-mail (.eml, .mbox, Outlook .msg) and the attachments it can read
    ebooks.py            EPUB chapters in reading order, titled by the table of contents
    notebooks.py         Jupyter notebooks: markdown and code cells, no outputs
    ocr.py               OCR (RapidOCR) of PDF pages without text and of image files
    pagewriter.py        a document's headings, paragraphs and table rows laid out as a page
    archives.py          zip-bomb checks and safe XML for the zip-based formats
    isolation.py         reading files in a worker: memory capped, timed from the last heartbeat
    chunking.py          blocks become chunks that fit the embedder, counted with its tokenizer
    embedders.py         text to vectors: int8 ONNX or torch sentence-transformers models
    remote_embedder.py   text to vectors on an OpenAI-compatible embeddings server (openai:NAME)
    onnx_export.py       exporting a sentence-transformers model to int8 ONNX, once per model
    bundled.py           the offline models of ragchat[bundled], found without importing them
    hub.py               models from the Hugging Face hub: the cache first, a download if reachable
    ids.py               document and chunk ids: made and parsed here only
    store.py             the vector store (Chroma, local or a server); ``Hit``, one found chunk
    manifest.py          which files each collection holds (SQLite), its record, the write lock
    server_manifest.py   the manifest of a store shared through a Chroma server, and its local cache
    lexical.py           the BM25 indexes of a collection's chunks and file names (tantivy)
    document_vectors.py  one vector per document (NAME__docs): the mean of its chunks' vectors
    collection.py        one collection: its record, embedder check, creation, counts, and drop()
    discovery.py         which files an ingest takes, and why it leaves the others
    ingest.py            incremental ingest: load, chunk, embed, store what changed
    preview.py           ragchat chunks: how one file is split, nothing embedded or stored
    watch.py             ragchat watch: file events become incremental ingests of the changed paths
    retrieval.py         ranking: dense, lexical and hybrid (fused, then by file name), a result a page
    relevance.py         the relevance floor: does the collection support the question at all?
    prompting.py         prompt templates and packing excerpts into the LLM's token budget
    llms.py              LLM backends: llama.cpp for a GGUF, any OpenAI-compatible API (Endpoint)
    engine.py            the answer loop: a follow-up's queries, retrieve, judge, pack, stream
    citations.py         an answer against its excerpts: [n] markers, quotations, numbers
    explore.py           similar documents, k-means clusters, the 2-D map's groups, the spectrum
    map_drawing.py       drawing a document map as an offline HTML page or a PNG
    evaluation.py        retrieval metrics on BEIR data and gold sets, and ragchat eval's runs
    doctor.py            ragchat doctor: store, manifest and index agree? models there? private?
    config.py            settings: one typed model, flag > environment > config file > default
    errors.py            the errors ragchat raises on purpose, each naming its fix
    disk.py              a full, read-only or damaged disk, recognised in any library's error
    text.py              neutral string helpers: sanitize, shorten, spans, locations, URLs
    app.py               wiring: the store, collection, models and engine the settings name
    render.py            what ragchat shows: rich renderables of answers, sources and tables
    repl.py              ragchat chat: the prompt-toolkit REPL and its slash commands
    mcp_server.py        ragchat mcp: the collections as read-only MCP tools, over stdio or HTTP
    cli_options.py       the options every command shares (help from Settings), errors, consoles
    cli.py               ragchat: ingest, ask, chat, search, chunks, eval, doctor, config, status
    cli_explore.py       the commands similar, cluster, map and spectrum
    cli_serve.py         the commands that keep running: watch and mcp
    supervisor.py        the entry point: runs all but light commands in a watched child process
    interrupts.py        Ctrl-C that is never lost: a flag beside KeyboardInterrupt, checked after native code
    __main__.py          python -m ragchat
"""

__version__ = "0.1.0"
