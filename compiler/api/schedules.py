"""`Schedule`, `ScheduleRecurrence`, `TimeZone`: schedules kept in the IR for the targets."""

from __future__ import annotations

from ._session import current, fail
from ._v1 import V1Object, _uid
from .datastore import Datastore
from .publishing import _endpoints
from .runs import _override_values

# ------------------------------------------------------------------------------------- schedules


class TimeZone:
    UTC = "UTC"
    CoordinatedUniversalTime = "UTC"
    PacificStandardTime = "America/Los_Angeles"
    MountainStandardTime = "America/Denver"
    CentralStandardTime = "America/Chicago"
    EasternStandardTime = "America/New_York"
    CentralEuropeStandardTime = "Europe/Budapest"
    WEuropeStandardTime = "Europe/Berlin"
    GMTStandardTime = "Europe/London"
    IndiaStandardTime = "Asia/Kolkata"
    ChinaStandardTime = "Asia/Shanghai"
    TokyoStandardTime = "Asia/Tokyo"
    AUSEasternStandardTime = "Australia/Sydney"


class ScheduleRecurrence(V1Object):
    def __init__(
        self,
        frequency,
        interval,
        start_time=None,
        time_zone=None,
        hours=None,
        minutes=None,
        week_days=None,
        time_of_day=None,
    ):
        freq = str(frequency).capitalize()
        if freq not in ("Minute", "Hour", "Day", "Week", "Month"):
            raise fail(
                f"ScheduleRecurrence frequency must be Minute, Hour, Day, Week or Month, not {frequency!r}"
            )
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise fail("ScheduleRecurrence interval must be a positive integer")
        self.frequency = freq
        self.interval = interval
        self.start_time = start_time
        self.time_zone = time_zone
        self.hours = list(hours or [])
        self.minutes = list(minutes or [])
        self.week_days = list(week_days or [])
        self.time_of_day = time_of_day

    def validate(self):
        return None

    def _ir(self):
        from ..ir import Recurrence

        start = self.start_time
        if start is not None and not isinstance(start, str):
            start = start.isoformat()
        tz = self.time_zone
        return Recurrence(
            frequency=self.frequency,
            interval=self.interval,
            start_time=start,
            time_zone=None if tz is None else str(tz),
            hours=[int(h) for h in self.hours],
            minutes=[int(m) for m in self.minutes],
            week_days=[str(d) for d in self.week_days],
            time_of_day=self.time_of_day,
        )


class Schedule(V1Object):
    def __init__(self, name, pipeline, ir, recurrence=None):
        sess = current()
        self.name = name
        self.id = _uid("schedule", len(sess.schedules), name)
        self._pipeline = pipeline
        self._ir = ir
        self.pipeline_id = None
        self.pipeline_endpoint_id = None
        self.recurrence = recurrence
        self.description = ir.description
        trigger = ir.datastore_trigger
        self.datastore_name = trigger.datastore if trigger else None
        self.polling_interval = trigger.polling_interval_minutes if trigger else None
        self.path_on_datastore = trigger.path_on_datastore if trigger else None
        self.data_path_parameter_name = trigger.data_path_parameter if trigger else None

    @property
    def status(self):
        return "Active" if self._ir.active else "Disabled"

    @staticmethod
    def create(
        workspace,
        name,
        pipeline_id=None,
        experiment_name=None,
        recurrence=None,
        description=None,
        pipeline_parameters=None,
        wait_for_provisioning=False,
        wait_timeout=3600,
        datastore=None,
        polling_interval=5,
        data_path_parameter_name=None,
        continue_on_step_failure=None,
        path_on_datastore=None,
        _workflow_provider=None,
        _service_endpoint=None,
        pipeline_endpoint_id=None,
    ):
        sess = current()
        pipeline = None
        for pub in sess.publications:
            if pipeline_id is not None and pub.id == pipeline_id:
                pipeline = pub._pipeline
        for ep in _endpoints().values():
            if pipeline_endpoint_id is not None and ep.id == pipeline_endpoint_id:
                pipeline = ep._default()._pipeline
        if pipeline is None:
            if pipeline_endpoint_id is not None:
                raise fail(
                    f"Schedule: pipeline_endpoint_id {pipeline_endpoint_id!r} does not name a "
                    "PipelineEndpoint published in this file; pass pipeline_endpoint.id"
                )
            raise fail(
                f"Schedule.create: pipeline_id {pipeline_id!r} does not name a pipeline published "
                "in this file; pass published_pipeline.id"
            )
        if recurrence is None and datastore is None:
            raise fail("Schedule.create needs recurrence=ScheduleRecurrence(...) or datastore=...")
        if recurrence is not None and not isinstance(recurrence, ScheduleRecurrence):
            raise fail("Schedule recurrence must be a ScheduleRecurrence")
        ir = _schedule_ir(
            name,
            description,
            experiment_name,
            recurrence,
            datastore,
            path_on_datastore,
            polling_interval,
            data_path_parameter_name,
            pipeline_parameters,
        )
        sched = Schedule(name, pipeline, ir, recurrence)
        sched.pipeline_id = pipeline_id
        sched.pipeline_endpoint_id = pipeline_endpoint_id
        pipeline._schedules.append(sched)
        sess.schedules.append(sched)
        return sched

    @staticmethod
    def create_for_pipeline_endpoint(
        workspace,
        name,
        pipeline_endpoint_id,
        experiment_name,
        recurrence=None,
        description=None,
        pipeline_parameters=None,
        wait_for_provisioning=False,
        wait_timeout=3600,
        datastore=None,
        polling_interval=5,
        data_path_parameter_name=None,
        continue_on_step_failure=None,
        path_on_datastore=None,
        _workflow_provider=None,
        _service_endpoint=None,
    ):
        return Schedule.create(
            workspace,
            name,
            experiment_name=experiment_name,
            recurrence=recurrence,
            description=description,
            pipeline_parameters=pipeline_parameters,
            datastore=datastore,
            polling_interval=polling_interval,
            data_path_parameter_name=data_path_parameter_name,
            continue_on_step_failure=continue_on_step_failure,
            path_on_datastore=path_on_datastore,
            pipeline_endpoint_id=pipeline_endpoint_id,
        )

    @staticmethod
    def list(
        workspace,
        active_only=True,
        pipeline_id=None,
        _workflow_provider=None,
        _service_endpoint=None,
        pipeline_endpoint_id=None,
    ):
        return [
            s
            for s in current().schedules
            if pipeline_id in (None, s.pipeline_id)
            and pipeline_endpoint_id in (None, s.pipeline_endpoint_id)
            and (not active_only or s._ir.active)
        ]

    @staticmethod
    def get_all(workspace, active_only=True, pipeline_id=None, **kwargs):
        return Schedule.list(workspace, active_only, pipeline_id)

    @staticmethod
    def get(workspace, id, _workflow_provider=None, _service_endpoint=None):
        for s in current().schedules:
            if s.id == id:
                return s
        for s in current().schedules:
            if s.name == id:
                return s
        raise fail(f"no schedule {id!r} was created in this file")

    @staticmethod
    def get_schedules_for_pipeline_id(
        workspace, pipeline_id, _workflow_provider=None, _service_endpoint=None
    ):
        return Schedule.list(workspace, active_only=False, pipeline_id=pipeline_id)

    @staticmethod
    def get_schedules_for_pipeline_endpoint_id(
        workspace, pipeline_endpoint_id, _workflow_provider=None, _service_endpoint=None
    ):
        return Schedule.list(
            workspace, active_only=False, pipeline_endpoint_id=pipeline_endpoint_id
        )

    def enable(self, wait_for_provisioning=False, wait_timeout=3600):
        self._ir.active = True

    def disable(self, wait_for_provisioning=False, wait_timeout=3600):
        self._ir.active = False

    def update(
        self,
        name=None,
        description=None,
        recurrence=None,
        pipeline_parameters=None,
        status=None,
        wait_for_provisioning=False,
        wait_timeout=3600,
        datastore=None,
        polling_interval=None,
        data_path_parameter_name=None,
        continue_on_step_failure=None,
        path_on_datastore=None,
    ):
        if name is not None:
            self.name = self._ir.name = name
        if description is not None:
            self.description = self._ir.description = description
        if recurrence is not None:
            self.recurrence = recurrence
            self._ir.recurrence = recurrence._ir()
        if pipeline_parameters is not None:
            self._ir.pipeline_parameters = _override_values(
                pipeline_parameters, "Schedule pipeline_parameters"
            )
        if status is not None:
            if str(status) not in ("Active", "Disabled"):
                raise fail(f"Schedule status must be 'Active' or 'Disabled', not {status!r}")
            self._ir.active = str(status) == "Active"
        trigger = self._ir.datastore_trigger
        if trigger is not None:
            if datastore is not None:
                trigger.datastore = datastore.name
                self.datastore_name = datastore.name
            if polling_interval is not None:
                trigger.polling_interval_minutes = int(polling_interval)
                self.polling_interval = int(polling_interval)
            if path_on_datastore is not None:
                trigger.path_on_datastore = path_on_datastore
                self.path_on_datastore = path_on_datastore
            if data_path_parameter_name is not None:
                trigger.data_path_parameter = data_path_parameter_name
                self.data_path_parameter_name = data_path_parameter_name

    def get_last_pipeline_run(self):
        return None

    def get_pipeline_runs(self):
        return []

    def __repr__(self) -> str:
        return f"Schedule(Name: {self.name}, Id: {self.id}, Status: {self.status})"


def _schedule_ir(
    name,
    description,
    experiment_name,
    recurrence,
    datastore,
    path_on_datastore,
    polling_interval,
    data_path_parameter_name,
    pipeline_parameters,
):
    from ..ir import DatastoreTrigger
    from ..ir import Schedule as IrSchedule

    if not isinstance(name, str) or not name:
        raise fail("Schedule needs a name")
    trigger = None
    if datastore is not None:
        if not isinstance(datastore, Datastore):
            raise fail("Schedule datastore= must be a Datastore")
        trigger = DatastoreTrigger(
            datastore=datastore.name,
            path_on_datastore=path_on_datastore,
            polling_interval_minutes=int(polling_interval or 5),
            data_path_parameter=data_path_parameter_name,
        )
    return IrSchedule(
        name=name,
        description=description,
        experiment_name=experiment_name,
        recurrence=recurrence._ir() if recurrence is not None else None,
        datastore_trigger=trigger,
        pipeline_parameters=_override_values(pipeline_parameters, "Schedule pipeline_parameters"),
        origin=current().origin(),
    )
