"""``python -m examples.pqri_psr_app --client-id psr --port 5102``: serve one sample application.

Settings come from the ``IACS_*`` environment like every IACS process: Keycloak's URL and realm
(``IACS_KEYCLOAK__URL``, ``IACS_KEYCLOAK__REALM``, ``IACS_KEYCLOAK__PUBLIC_URL``) and the
client secret (``IACS_KEYCLOAK__APPLICATION_CLIENT_SECRETS``, JSON keyed by client id). The
redirect URI is the one in ``IACS_KEYCLOAK__APPLICATION_REDIRECT_URIS`` for this client, else
``http://<host>:<port>/oidc/callback``.
"""

from __future__ import annotations

import argparse
import os

from werkzeug.serving import run_simple

from iacs.settings import load_settings

from .app import APPLICATIONS, CALLBACK_PATH, AppConfig, create_app

DEFAULT_PORTS = {"pqri-feedback-reports": 5101, "psr": 5102}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.pqri_psr_app", description=__doc__)
    parser.add_argument("--client-id", choices=sorted(APPLICATIONS), required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default 5101 (PQRI) or 5102 (PS&R)")
    args = parser.parse_args(argv)

    settings = load_settings()
    port = args.port or DEFAULT_PORTS[args.client_id]
    redirect_uri = settings.keycloak.application_redirect_uris.get(
        args.client_id, f"http://{args.host}:{port}{CALLBACK_PATH}"
    )
    config = AppConfig.from_settings(
        settings,
        args.client_id,
        redirect_uri,
        secret_key=os.environ.get("EXAMPLE_APP_SECRET_KEY"),
    )
    app = create_app(config)
    print(f"{APPLICATIONS[args.client_id].name} on http://{args.host}:{port}/", flush=True)
    run_simple(args.host, port, app, threaded=True)


if __name__ == "__main__":
    main()
