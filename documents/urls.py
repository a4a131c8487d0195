from django.urls import path

from documents import views

urlpatterns = [
    path("", views.home, name="home"),
    path("graduates/", views.graduate_list, name="graduates"),
    path("graduates/new/", views.graduate_create, name="graduate_create"),
    path("graduates/<int:pk>/", views.graduate_detail, name="graduate"),
    path("graduates/<int:pk>/edit/", views.graduate_edit, name="graduate_edit"),
    path("graduates/<int:graduate_pk>/documents/new/", views.document_create, name="document_create"),
    path("documents/", views.document_list, name="documents"),
    path("documents/<int:pk>/", views.document_detail, name="document"),
    path("documents/<int:pk>/edit/", views.document_edit, name="document_edit"),
    path("documents/<int:pk>/delete/", views.document_delete, name="document_delete"),
    path("documents/<int:pk>/issue/", views.document_issue, name="document_issue"),
    path("documents/<int:pk>/annul/", views.document_annul, name="document_annul"),
    path("documents/<int:pk>/duplicate/", views.document_duplicate, name="document_duplicate"),
    path("documents/<int:pk>/correct/", views.document_correct, name="document_correct"),
    path("documents/<int:pk>/print/", views.document_print, name="document_print"),
    path("documents/export.<str:fmt>", views.export, name="export"),
    path("imports/", views.upload, name="upload"),
    path("imports/<int:pk>/", views.job_detail, name="job"),
    path("imports/<int:pk>/issue/", views.job_issue_drafts, name="job_issue"),
    path("imports/<int:pk>/progress/", views.job_progress, name="job_progress"),
    path("imports/<int:pk>/errors.csv", views.job_errors, name="job_errors"),
]
