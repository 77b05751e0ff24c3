"""The load job's upload of a Parquet file, in chunks of bounded size (issue 16).

``Client.load_table_from_file`` uploads a file of 5 MiB or more resumably in chunks of the
client's private ``_DEFAULT_CHUNKSIZE`` (100 MB), each read into memory: the process's peak
memory grew with the batch up to 100 MB. Here the same resumable upload is made with
google-resumable-media's ``ResumableUpload`` (a dependency of google-cloud-bigquery at every
version smolqwery supports) in chunks of ``chunk_size``, through the client's own authorized
session and endpoint, with the job resource the client would send. BigQuery creates the job when
the last chunk arrives; an upload that stops before that creates nothing. A smaller file still
goes through the client in one multipart request.

Part of the BigQuery backend: ``google.*`` is imported here and in ``bigquery.py`` only.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google.cloud import bigquery

#: Resumable chunks must be multiples of 256 KiB (all but the last one).
CHUNK_UNIT = 256 * 1024
#: The chunk size: what the upload holds in memory, whatever the file's size. 8 MiB: Google's
#: smallest advised chunk for throughput (one HTTP round trip per chunk).
UPLOAD_CHUNK_SIZE = 32 * CHUNK_UNIT
#: Below this a file goes in one multipart request, as the client itself decides (its
#: ``_MAX_MULTIPART_SIZE``): one request instead of two or more.
MULTIPART_LIMIT = 5 * 1024 * 1024


def load_from_file(
    client: bigquery.Client,
    path: str,
    destination: str,
    job_id: str,
    config: bigquery.LoadJobConfig,
    location: str | None,
    chunk_size: int = UPLOAD_CHUNK_SIZE,
) -> bigquery.LoadJob:
    """Upload ``path`` and start its load job ``job_id`` into ``destination``; return the job.

    One attempt, no retries of its own (like the client with ``num_retries=0``): the caller
    retries the whole upload under the same job id. A file smaller than one chunk (and than
    5 MiB) goes through the client's multipart upload.
    """
    size = os.path.getsize(path)
    if size < min(MULTIPART_LIMIT, chunk_size):
        with open(path, "rb") as fh:
            return client.load_table_from_file(
                fh,
                destination,
                size=size,
                job_id=job_id,
                job_config=config,
                location=location,
                num_retries=0,
            )
    return _resumable(
        client, path, size, _job_resource(client, destination, job_id, config, location), chunk_size
    )


def _job_resource(
    client: bigquery.Client,
    destination: str,
    job_id: str,
    config: bigquery.LoadJobConfig,
    location: str | None,
) -> dict[str, Any]:
    """The ``jobs.insert`` body ``load_table_from_file`` builds: the job's reference (the
    client's location when none is given) and its configuration with the destination."""
    from google.cloud import bigquery

    reference: dict[str, Any] = {"projectId": client.project, "jobId": job_id}
    location = location or client.location
    if location is not None:
        reference["location"] = location
    table = bigquery.TableReference.from_string(destination, default_project=client.project)
    configuration = config.to_api_repr()
    configuration["load"]["destinationTable"] = table.to_api_repr()
    return {"jobReference": reference, "configuration": configuration}


def _resumable(
    client: bigquery.Client, path: str, size: int, resource: dict[str, Any], chunk_size: int
) -> bigquery.LoadJob:
    """The resumable upload in ``chunk_size`` chunks; the last chunk's answer is the job."""
    from google import resumable_media
    from google.api_core import exceptions
    from google.resumable_media.requests import ResumableUpload

    connection: Any = client._connection
    base = (
        connection.get_api_base_url_for_mtls()
        if hasattr(connection, "get_api_base_url_for_mtls")
        else connection.API_BASE_URL
    )
    url = f"{base}/upload/bigquery/v2/projects/{client.project}/jobs?uploadType=resumable"
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": connection.user_agent,
        "content-type": "application/json; charset=UTF-8",
    }
    upload: Any = ResumableUpload(url, chunk_size, headers=headers)  # type: ignore[no-untyped-call]
    # No retries inside the upload (the client sets the same attribute for num_retries=0).
    upload._retry_strategy = resumable_media.RetryStrategy(max_retries=0)  # type: ignore[no-untyped-call]
    transport: Any = client._http
    try:
        with open(path, "rb") as fh:
            upload.initiate(transport, fh, resource, "*/*", total_bytes=size, timeout=None)
            while True:
                response = upload.transmit_next_chunk(transport, timeout=None)
                if upload.finished:
                    break
                # A response keeps its request, whose body is the chunk: let it go before the
                # next chunk is read, or two chunks are in memory at once.
                del response
    except resumable_media.InvalidResponse as exc:  # turned into API errors, as the client does
        raise exceptions.from_http_response(exc.response) from exc  # type: ignore[no-untyped-call]
    job: Any = client.job_from_resource(response.json())
    return job  # type: ignore[no-any-return]
