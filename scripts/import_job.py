"""Test tools' shared piece: one import job, run by a real Milvus 2.3.5 server's `Import` RPC
(through pymilvus), described in the shape of Import Operations (V2), as Zilliz Cloud's
control plane and Milvus 2.4+'s REST API answer `getProgress` / `describe`."""


def describe(job_id, collection, file_name, task, alias):
    """The job's description: Pending, Importing, Completed or Failed (all or nothing)."""
    from pymilvus import utility
    st = utility.get_bulk_insert_state(task, using=alias)
    state = {"Completed": "Completed", "Failed": "Failed", "FailedAndCleaned": "Failed",
             "Pending": "Pending"}.get(st.state_name, "Importing")
    rows = st.row_count if state == "Completed" else 0
    return {"jobId": job_id, "collectionName": collection, "state": state,
            "progress": 100 if state == "Completed" else 50, "importedRows": rows,
            "totalRows": rows, "reason": st.failed_reason if state == "Failed" else "",
            "details": [{"fileName": file_name, "state": state, "importedRows": rows}]}
