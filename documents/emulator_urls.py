"""URLs of the Gosuslugi emulator: the adapter contract plus the personal account page.

Mounted at /gosuslugi-emulator/ in the portal (GOSUSLUGI_EMULATOR) and used as the
root URLconf by `manage.py run_gosuslugi_emulator`, so names carry no namespace.
The SNILS appears in a URL only in the contract's own call; the page takes it from
a form.
"""

from django.urls import path

from documents import emulator

urlpatterns = [
    path("documents", emulator.documents_collection, name="gosuslugi_emulator_documents"),
    path("documents/<str:portal_id>", emulator.document_item, name="gosuslugi_emulator_document"),
    path("accounts/<str:snils>/documents", emulator.account_documents, name="gosuslugi_emulator_account_documents"),
    path("_faults", emulator.faults_view, name="gosuslugi_emulator_faults"),
    path("_state", emulator.state_view, name="gosuslugi_emulator_state"),
    path("", emulator.account_page, name="gosuslugi_emulator_account"),
]
