# -*- coding: utf-8 -*-
# Copyright: (c) 2025, kubess.stateful maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The collection's exceptions: the failure a module reports, and the transport's two."""


class ModuleFailure(Exception):
    """What a module reports with fail_json: a message, plus result fields (ordinal, pod, reason, ...)."""

    def __init__(self, msg, **result):
        super().__init__(msg)
        self.msg = msg
        self.result = result


class ApiFailure(Exception):
    """The API refused a request for good (403, 404, 400, ...)."""

    def __init__(self, status, message):
        super().__init__("HTTP {0}: {1}".format(status, message))
        self.status = status
        self.message = message


class TransientApiError(Exception):
    """The API could not be reached or answered with a retryable error."""
